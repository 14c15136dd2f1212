"""The servers `make bench` measures: the fake upstream, the floor and the gateway on each store."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.procs import free_port, healthy, log, stop_group

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EMAIL = "bench@example.com"


@contextmanager
def fake_upstream(prefix: list[str], chunks: int, interval: float, workdir: Path) -> Iterator[int]:
    cmd = [*prefix, sys.executable, "-m", "bench.fake_upstream", "--chunks", str(chunks)]
    cmd += ["--interval", str(interval)]
    with open(workdir / "upstream.log", "wb") as err:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, start_new_session=True
        )
    try:
        line = proc.stdout.readline().decode() if proc.stdout else ""
        if not line.startswith("listening "):
            raise RuntimeError(f"the fake upstream did not start: {line!r}")
        yield int(line.split()[1])
    finally:
        stop_group(proc)


def postgres_url() -> str | None:
    """Return DATABASE_URL if it is PostgreSQL, else GATEWAY_TEST_POSTGRES_URL if that answers."""
    from sqlalchemy import create_engine, text

    from gateway.config.settings import normalise_database_url

    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgresql", "postgres:")):
        return normalise_database_url(url)
    url = os.environ.get("GATEWAY_TEST_POSTGRES_URL", "")
    if not url.startswith(("postgresql", "postgres:")):
        return None
    url = normalise_database_url(url)
    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return url
    except Exception:  # noqa: BLE001 - any failure means: not reachable, skip PostgreSQL
        log("PostgreSQL is not reachable: the gateway is measured on SQLite only")
        return None
    finally:
        engine.dispose()


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """Yield the gateway's DATABASE_URL: a SQLite file, or a throwaway schema in PostgreSQL."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir}/gateway.db"
        return
    from sqlalchemy import create_engine, text

    url = postgres_url()
    assert url is not None
    schema = "bench_" + uuid.uuid4().hex[:12]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def write_config(path: Path, upstream_port: int) -> None:
    path.write_text(
        "[providers.fake]\n"
        'type = "openai"\n'
        f'base_url = "http://127.0.0.1:{upstream_port}/v1"\n'
        'api_key = "sk-bench-upstream"\n'
        "[providers.fake.models.whole]\ninput_price = 1.0\noutput_price = 2.0\n"
        "[providers.fake.models.stream]\ninput_price = 1.0\noutput_price = 2.0\n"
    )


def gateway_cli(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run(  # noqa: S603 - the venv's own gateway command
        [str(BIN / "gateway"), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"gateway {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def gateway_env(db_url: str, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_CONFIG=str(config), DATABASE_URL=db_url, PYTHONUNBUFFERED="1")
    for name in ("GATEWAY_WORKERS", "GATEWAY_THREADS", "GATEWAY_DB_POOL_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def provision(env: dict[str, str]) -> str:
    """Create the schema, a user with a balance and a key; return the key."""
    gateway_cli(env, "db", "init")
    gateway_cli(env, "users", "create", EMAIL)
    gateway_cli(env, "credit", EMAIL, "100000", "--note", "make bench")
    out = gateway_cli(env, "keys", "create", "--user", EMAIL, "--name", "bench")
    return out.strip().splitlines()[-1]


@contextmanager
def gunicorn(prefix: list[str], env: dict[str, str], app: str, log_path: Path) -> Iterator[tuple[int, int]]:
    """Run app under the repo's gunicorn.conf.py (same workers, threads, timeouts); yield port and pid."""
    port = free_port()
    env = dict(env, GATEWAY_BIND=f"127.0.0.1:{port}")
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - the venv's gunicorn with the repo's config
            [*prefix, str(BIN / "gunicorn"), "-c", str(REPO / "gunicorn.conf.py"), app],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not healthy(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not come up; see {log_path}")
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        stop_group(proc)

"""Run the real gateway under gunicorn in a subprocess on a free loopback port, for live tests.

    with store_url("sqlite", tmp_dir) as url, run_gateway(tmp_dir, url, fake.url) as gw:
        requests.post(gw.api_base + "/chat/completions", headers=gw.headers, json=...)

run_gateway writes a TOML config pointing provider "fake" at the fake upstream, runs `gateway db init`
and `gateway keys create` with the same environment, starts gunicorn in its own process group, waits
for /healthz and kills the whole group afterwards. Several gateways may share one database.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.upstream import MODELS, SECRET
from tests.support.postgres import fresh_schema

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the venv the tests run in holds gunicorn and gateway
INPUT_PRICE = 1.0  # USD per million tokens: one micro-USD a prompt token
OUTPUT_PRICE = 2.0
STARTUP_TIMEOUT = 30.0


@dataclass
class GatewayServer:
    """A running gateway: where it listens, the key it was given, and how to reach its CLI and log."""

    port: int
    key: str
    database_url: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + "/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `gateway ARGS` against this gateway's config and database; raise if it fails."""
        return _cli(self.env, *args)

    def create_key(self, *args: str) -> str:
        """Create another key (`gateway keys create ARGS`) and return it."""
        return self.cli("keys", "create", *args).stdout.strip().splitlines()[-1]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def write_config(path: Path, upstream_url: str | None, extra_toml: str = "") -> Path:
    """Write a gateway TOML whose provider "fake" serves every model of the fake upstream."""
    lines = []
    if upstream_url:
        lines += [
            "[providers.fake]",
            'type = "openai"',
            f'base_url = "{upstream_url}"',
            f'api_key = "{SECRET}"',
        ]
        for model in MODELS:
            lines += [
                f"[providers.fake.models.{model}]",
                f"input_price = {INPUT_PRICE}",
                f"output_price = {OUTPUT_PRICE}",
            ]
    path.write_text("\n".join(lines) + "\n" + extra_toml)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(BIN / "gateway"), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"gateway {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _stop(proc: subprocess.Popen) -> None:
    # SIGINT is gunicorn's quick shutdown: open streams are cut rather than waited for.
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _start(conf: Path, workdir: Path, env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, int]:
    """Start gunicorn on a free port and wait for /healthz; retry only when the port was taken."""
    for _attempt in range(3):  # a free port can be taken between free_port() and gunicorn's bind
        port = free_port()
        env["GATEWAY_BIND"] = f"127.0.0.1:{port}"
        offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                # As in the repo config: no gunicorn here may take over ~/.gunicorn/gunicorn.ctl.
                [str(BIN / "gunicorn"), "-c", str(conf), "--no-control-socket"],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so the workers die with it
            )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                if _healthy(port):
                    return proc, port
                time.sleep(0.05)
        except BaseException:
            _stop(proc)
            raise
        _stop(proc)
        with open(log_path, "rb") as log:
            log.seek(offset)
            if b"in use" not in log.read():
                break
    raise RuntimeError(f"gunicorn did not come up; its log:\n{log_path.read_text(errors='replace')[-4000:]}")


@contextmanager
def run_gateway(
    workdir: Path,
    database_url: str,
    upstream_url: str | None = None,
    *,
    workers: int = 1,
    threads: int = 8,
    env: dict[str, str] | None = None,
    extra_toml: str = "",
    init_db: bool = True,
    gunicorn_conf: Path = REPO / "gunicorn.conf.py",
) -> Iterator[GatewayServer]:
    """Start one gateway on a free loopback port; workdir holds its config and log."""
    name = "gw-" + uuid.uuid4().hex[:8]
    config = write_config(workdir / f"{name}.toml", upstream_url, extra_toml)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_") and k != "DATABASE_URL"}
    run_env = {
        **base_env,
        "GATEWAY_CONFIG": str(config),
        "DATABASE_URL": database_url,
        "GATEWAY_WORKERS": str(workers),
        "GATEWAY_THREADS": str(threads),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    if init_db:
        _cli(run_env, "db", "init")
    key = _cli(run_env, "keys", "create", "--name", name).stdout.strip().splitlines()[-1]
    log_path = workdir / f"{name}.log"
    proc, port = _start(gunicorn_conf, workdir, run_env, log_path)
    try:
        yield GatewayServer(port, key, database_url, run_env, log_path, proc)
    finally:
        _stop(proc)


@contextmanager
def store_url(kind: str, workdir: Path) -> Iterator[str]:
    """Yield a DATABASE_URL: a SQLite file in workdir, or a fresh PostgreSQL schema dropped afterwards.

    PostgreSQL is skipped loudly without GATEWAY_TEST_POSTGRES_URL, and fails in CI (support/postgres.py).
    """
    if kind == "sqlite":
        yield f"sqlite:///{workdir}/gateway.db"
        return
    with fresh_schema("live_") as url:
        yield url

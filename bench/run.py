"""`make bench`: the gateway's overhead against a direct-to-upstream baseline, measured in one run.

It starts the fake upstream (bench/fake_upstream.py) and the gateway under gunicorn (gunicorn.conf.py)
on loopback, with a real user, balance and key, so auth, reservation, settlement and the usage row
all run; drives whole answers with wrk and streams with bench/streams.py; and writes the results as
JSON and a Markdown table under var/bench/. With two or more cores the gateway is pinned to core 0
and everything else (upstream, wrk, the stream client) to core 1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
EMAIL = "bench@example.com"
WRK_TIMEOUT_SLACK = 30  # seconds a wrk run may take beyond its -d before it is killed


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def pinning(cpus: int) -> tuple[list[str], list[str]]:
    """Return the taskset prefixes for the gateway and for everything else."""
    if cpus >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    return [], []


def process_tree(root: int) -> list[int]:
    """Return root and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> float:
    """Return user + system CPU seconds used so far by the live processes of the tree."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def tree_rss_bytes(root: int) -> int:
    """Return the summed RSS of the tree (shared pages count once per process, as `ps` shows)."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * PAGE
        except OSError:
            continue
    return total


class RssSampler:
    """Sample the tree's RSS every interval seconds in a thread; keep the peak and the series."""

    def __init__(self, root: int, interval: float) -> None:
        self.root = root
        self.interval = interval
        self.peak = 0
        self.series: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = tree_rss_bytes(self.root)
            self.peak = max(self.peak, rss)
            self.series.append((round(time.monotonic() - self._started, 1), rss))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and everything it started."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


@contextmanager
def fake_upstream(prefix: list[str], chunks: int, interval: float, workdir: Path):
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
        yield int(line.split()[1]), proc
    finally:
        stop_group(proc)


@contextmanager
def database(workdir: Path):
    """Yield the gateway's DATABASE_URL: a fresh schema in DATABASE_URL's PostgreSQL, or a SQLite file."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgresql", "postgres:")):
        yield f"sqlite:///{workdir}/gateway.db", "sqlite"
        return
    from sqlalchemy import create_engine, text

    from gateway.config.settings import normalise_database_url

    url = normalise_database_url(base)
    schema = "bench_" + uuid.uuid4().hex[:12]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}", "postgresql"
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


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@contextmanager
def gateway(prefix: list[str], env: dict[str, str], workdir: Path):
    port = free_port()
    env = dict(env, GATEWAY_BIND=f"127.0.0.1:{port}")
    with open(workdir / "gateway.log", "ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - the venv's gunicorn with the repo's config
            [*prefix, str(BIN / "gunicorn"), "-c", str(REPO / "gunicorn.conf.py")],
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
                raise RuntimeError(f"gunicorn did not come up; see {workdir / 'gateway.log'}")
            time.sleep(0.1)
        yield port, proc
    finally:
        stop_group(proc)


def set_affinity(root: int, cpus: set[int]) -> None:
    """Move every thread of every process in the tree to cpus (new threads inherit it)."""
    for pid in process_tree(root):
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(tid), cpus)
        except OSError:
            continue


def wrk(prefix: list[str], url: str, model: str, key: str, connections: int, seconds: int) -> dict[str, Any]:
    env = dict(os.environ, BENCH_MODEL=model, BENCH_KEY=key)
    cmd = [*prefix, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    cmd += ["-s", str(REPO / "bench" / "whole.lua"), url]
    out = subprocess.run(  # noqa: S603 - wrk from the system
        cmd, env=env, capture_output=True, text=True, timeout=seconds + WRK_TIMEOUT_SLACK, check=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    data = json.loads(line[6:])
    data["errors"] = sum(data[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    data["errors"] += data["status_errors"]
    data["rps"] = round(data["requests"] / (data["duration_us"] / 1e6), 1)
    return data


def stream_client(prefix: list[str], port: int, path: str, model: str, key: str, **opts: Any) -> dict:
    cmd = [*prefix, sys.executable, "-m", "bench.streams", "--port", str(port), "--path", path]
    cmd += ["--model", model, "--key", key]
    for name, value in opts.items():
        cmd += [f"--{name}", str(value)]
    budget = opts.get("duration", 0) + 120 + 10 * opts.get("rounds", 1)
    out = subprocess.run(  # noqa: S603 - our own interpreter and module
        cmd, cwd=REPO, capture_output=True, text=True, timeout=budget, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


class Bench:
    """One benchmark run: the processes it started and what it measured."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.gw_prefix, self.load_prefix = pinning(os.cpu_count() or 1)
        self.results: dict[str, Any] = {"machine": machine(), "whole": [], "streams": []}

    def run(self) -> dict[str, Any]:
        a = self.args
        with ExitStack() as stack:
            up_port, _ = stack.enter_context(
                fake_upstream(self.load_prefix, a.chunks, a.interval, self.workdir)
            )
            db_url, db_kind = stack.enter_context(database(self.workdir))
            config = self.workdir / "gateway.toml"
            write_config(config, up_port)
            env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
            env.update(GATEWAY_CONFIG=str(config), DATABASE_URL=db_url, PYTHONUNBUFFERED="1")
            for name in ("GATEWAY_WORKERS", "GATEWAY_THREADS", "GATEWAY_DB_POOL_SIZE"):
                if name in os.environ:
                    env[name] = os.environ[name]
            gateway_cli(env, "db", "init")
            gateway_cli(env, "users", "create", EMAIL)
            gateway_cli(env, "credit", EMAIL, "100000", "--note", "make bench")
            key = (
                gateway_cli(env, "keys", "create", "--user", EMAIL, "--name", "bench")
                .strip()
                .splitlines()[-1]
            )
            gw_port, gw = stack.enter_context(gateway(self.gw_prefix, env, self.workdir))
            self.results["setup"] = self._setup(db_kind, gw.pid)
            direct = (up_port, "/v1/chat/completions", "whole", "stream")
            through = (gw_port, "/api/v1/chat/completions", "fake:whole", "fake:stream")
            if not a.skip_whole:
                self._whole(direct, through, key, gw.pid)
            if not a.skip_streams:
                self._streams(direct, through, key, gw.pid)
            if a.soak:
                self._soak(through, key, gw.pid)
            self.results["billing"] = json.loads(gateway_cli(env, "users", "show", EMAIL, "--json"))
        return self.results

    def _setup(self, db_kind: str, gw_pid: int) -> dict[str, Any]:
        workers = len(process_tree(gw_pid)) - 1
        return {
            "database": db_kind,
            "gunicorn_workers": workers,
            "gunicorn_threads": int(os.environ.get("GATEWAY_THREADS", "0")) or "gunicorn.conf.py default",
            "gateway_cpus": "0" if self.gw_prefix else "all",
            "load_cpus": "1" if self.load_prefix else "all",
            "stream_gateway_cpus": self.args.stream_cpus,
            "duration_s": self.args.duration,
        }

    def _whole(self, direct: tuple, through: tuple, key: str, gw_pid: int) -> None:
        a = self.args
        for port, path, model, _ in (direct, through):
            url = f"http://127.0.0.1:{port}{path}"
            wrk(self.load_prefix, url, model, key, 16, a.warmup)  # warm pools, caches, threads
        for c in a.concurrency:
            row: dict[str, Any] = {"concurrency": c}
            for name, (port, path, model, _) in (("direct", direct), ("gateway", through)):
                url = f"http://127.0.0.1:{port}{path}"
                log(f"whole answers, {name}, c={c}, {a.duration}s")
                cpu0 = tree_cpu_seconds(gw_pid)
                row[name] = wrk(self.load_prefix, url, model, key, c, a.duration)
                if name == "gateway":
                    used = tree_cpu_seconds(gw_pid) - cpu0
                    row[name]["cpu_us_per_request"] = round(used * 1e6 / max(1, row[name]["requests"]), 1)
            row["added_p50_ms"] = round((row["gateway"]["p50_us"] - row["direct"]["p50_us"]) / 1000, 3)
            row["added_p99_ms"] = round((row["gateway"]["p99_us"] - row["direct"]["p99_us"]) / 1000, 3)
            self.results["whole"].append(row)

    def _streams(self, direct: tuple, through: tuple, key: str, gw_pid: int) -> None:
        a = self.args
        cpus = set(range(os.cpu_count() or 1)) if a.stream_cpus == "all" else {int(a.stream_cpus)}
        set_affinity(gw_pid, cpus)
        try:
            for n in a.streams:
                row: dict[str, Any] = {"concurrency": n}
                for name, (port, path, _, model) in (("direct", direct), ("gateway", through)):
                    log(f"streams, {name}, {n} concurrent, {a.rounds} rounds")
                    cpu0 = tree_cpu_seconds(gw_pid)
                    with RssSampler(gw_pid, 0.2) as rss:
                        row[name] = stream_client(
                            self.load_prefix, port, path, model, key,
                            concurrency=n, rounds=a.rounds, ramp=a.chunks * a.interval,
                            chunks=a.chunks, interval=a.interval,
                        )  # fmt: skip
                    if name == "gateway":
                        chunks = max(1, row[name]["streams_ok"] * a.chunks)
                        used = tree_cpu_seconds(gw_pid) - cpu0
                        row[name]["cpu_us_per_chunk"] = round(used * 1e6 / chunks, 1)
                        row[name]["peak_rss_mib"] = round(rss.peak / 2**20, 1)
                for stat in ("ttfb_p50_ms", "ttfb_p99_ms", "gap_p99_ms"):
                    g, d = row["gateway"][stat], row["direct"][stat]
                    row["added_" + stat] = None if g is None or d is None else round(g - d, 2)
                self.results["streams"].append(row)
        finally:
            set_affinity(gw_pid, {0} if self.gw_prefix else cpus)

    def _soak(self, through: tuple, key: str, gw_pid: int) -> None:
        """Mixed load for SOAK seconds: wrk at c=16 beside 100 streams, RSS sampled every 5 s."""
        a = self.args
        port, path, whole_model, stream_model = through
        log(f"soak for {a.soak}s: whole answers at c=16 beside 100 concurrent streams")
        box: dict[str, Any] = {}

        def whole() -> None:
            url = f"http://127.0.0.1:{port}{path}"
            box["whole"] = wrk(self.load_prefix, url, whole_model, key, 16, a.soak)

        thread = threading.Thread(target=whole, daemon=True)
        with RssSampler(gw_pid, 5.0) as rss:
            thread.start()
            box["streams"] = stream_client(
                self.load_prefix, port, path, stream_model, key,
                concurrency=100, duration=a.soak, ramp=a.chunks * a.interval,
                chunks=a.chunks, interval=a.interval,
            )  # fmt: skip
            thread.join(a.soak + WRK_TIMEOUT_SLACK + 10)
        # The first minute (or tenth) fills thread stacks, pools and caches; growth counts from there.
        warm = min(60.0, a.soak / 10)
        start = next((b for t, b in rss.series if t >= warm), rss.series[0][1])
        end = rss.series[-1][1]
        self.results["soak"] = {
            "seconds": a.soak,
            "rss_start_mib": round(start / 2**20, 1),
            "rss_end_mib": round(end / 2**20, 1),
            "rss_peak_mib": round(rss.peak / 2**20, 1),
            "rss_growth_pct": round((end - start) * 100 / start, 1),
            "whole": box.get("whole"),
            "streams": box["streams"],
            "rss_series_mib": [(t, round(b / 2**20, 1)) for t, b in rss.series],
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of wrk warm-up per target")
    parser.add_argument("--concurrency", type=ints, default=[1, 16, 64], help="wrk connections, e.g. 1,16,64")
    parser.add_argument("--streams", type=ints, default=[100, 1000], help="concurrent streams, e.g. 100,1000")
    parser.add_argument("--rounds", type=int, default=3, help="streams each stream client runs in turn")
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between upstream chunks")
    parser.add_argument("--stream-cpus", default="0", help="gateway CPUs in the stream runs: 0 or all")
    parser.add_argument("--soak", type=int, default=0, help="seconds of soak after the rest (0: none)")
    parser.add_argument("--skip-whole", action="store_true")
    parser.add_argument("--skip-streams", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None and not args.skip_whole:
        log("wrk is not installed: apt-get install wrk (make bench does it)")
        return 2
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    workdir = args.out / f"run-{stamp}"
    workdir.mkdir(parents=True, exist_ok=True)
    results = Bench(args, workdir).run()
    table = report.markdown(results)
    for name in (f"results-{stamp}", "latest"):
        (args.out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / f"{name}.md").write_text(table)
    print(table)
    log(f"results in {args.out}/results-{stamp}.json and .md; logs in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: the gateway against the floor and direct-to-upstream, all measured in one run.

One fake upstream (bench/fake_upstream.py), one load generator per kind (wrk for whole answers,
bench/streams.py for streams) and one pinning serve every target in turn: direct (the upstream
itself), the floor (bench/floor.py, a bare Flask + requests relay: the reference, not the product)
and the gateway on SQLite and on PostgreSQL (DATABASE_URL, or GATEWAY_TEST_POSTGRES_URL when it
answers), with a real user, balance and key, so auth, reservation, settlement and the usage row all
run. Whole answers pin the server to core 0 and the rest to core 1; streams run the server as
gunicorn.conf.py sizes it on every core. Results go to var/bench/ as JSON and Markdown, with each
ratio against issue 16's targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.procs import RssSampler, log, pinning, tree_cpu_seconds
from bench.servers import (
    REPO,
    database,
    fake_upstream,
    gateway_env,
    gunicorn,
    postgres_url,
    provision,
    write_config,
)

WRK_TIMEOUT_SLACK = 30  # seconds a wrk run may take beyond its -d before it is killed


@dataclass
class Target:
    """One thing to measure: direct has a port and no process; the others are gunicorn apps."""

    name: str
    app: str | None
    env: dict[str, str] = field(default_factory=dict)
    key: str = "sk-floor-bench"
    path: str = "/api/v1/chat/completions"
    models: tuple[str, str] = ("fake:whole", "fake:stream")


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
    """One benchmark run: the targets, the processes it started and what it measured."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.server_prefix, self.load_prefix = pinning(os.cpu_count() or 1)
        self.results: dict[str, Any] = {"machine": machine(), "whole": {}, "streams": {}, "targets": []}

    def run(self) -> dict[str, Any]:
        a = self.args
        with ExitStack() as stack:
            up = stack.enter_context(fake_upstream(self.load_prefix, a.chunks, a.interval, self.workdir))
            config = self.workdir / "gateway.toml"
            write_config(config, up)
            floor_env = dict(
                os.environ, BENCH_UPSTREAM=f"http://127.0.0.1:{up}/v1", BENCH_KEY="sk-floor-bench"
            )
            targets = [
                Target("direct", None, path="/v1/chat/completions", models=("whole", "stream")),
                Target("floor", "bench.floor:app", floor_env, models=("whole", "stream")),
            ]
            for store in a.stores:
                env = gateway_env(stack.enter_context(database(store, self.workdir)), config)
                targets.append(Target(f"gateway-{store}", "gateway.wsgi:app", env, provision(env)))
            self.results["targets"] = [t.name for t in targets]
            self.results["setup"] = self._setup()
            for target in targets:
                if not a.skip_whole:
                    self._whole(target, up)
                if not a.skip_streams:
                    self._streams(target, up)
            if a.soak:
                self._soak(targets[-1], up)
        return self.results

    def _setup(self) -> dict[str, Any]:
        a = self.args
        return {
            "duration_s": a.duration,
            "server_cpus": "0" if self.server_prefix else "all",
            "load_cpus": "1" if self.load_prefix else "all",
            "stream_cpus": a.stream_cpus,
            "chunks": a.chunks,
            "interval_ms": round(a.interval * 1000),
            "rounds": a.rounds,
        }

    def _serve(self, target: Target, up: int, prefix: list[str], phase: str) -> ExitStack:
        """Start the target (direct needs nothing); return a stack holding (port, pid) at .port/.pid."""
        stack = ExitStack()
        if target.app is None:
            self._port, self._pid = up, None
        else:
            log_path = self.workdir / f"{target.name}.log"
            self._port, self._pid = stack.enter_context(gunicorn(prefix, target.env, target.app, log_path))
        log(f"{target.name}: {phase}")
        return stack

    def _cpu(self) -> float:
        return tree_cpu_seconds(self._pid) if self._pid else 0.0

    def _whole(self, target: Target, up: int) -> None:
        a = self.args
        rows = self.results["whole"].setdefault(target.name, {})
        with self._serve(target, up, self.server_prefix, "whole answers"):
            url = f"http://127.0.0.1:{self._port}{target.path}"
            wrk(self.load_prefix, url, target.models[0], target.key, 16, a.warmup)  # pools, caches
            for c in a.concurrency:
                cpu0 = self._cpu()
                row = wrk(self.load_prefix, url, target.models[0], target.key, c, a.duration)
                if self._pid:
                    row["cpu_us_per_request"] = round((self._cpu() - cpu0) * 1e6 / max(1, row["requests"]), 1)
                rows[str(c)] = row

    def _streams(self, target: Target, up: int) -> None:
        a = self.args
        rows = self.results["streams"].setdefault(target.name, {})
        prefix = self.server_prefix if a.stream_cpus == "0" else []
        with self._serve(target, up, prefix, "streams"):
            for n in a.streams:
                cpu0 = self._cpu()
                with RssSampler(self._pid or os.getpid(), 0.2) as rss:
                    row = stream_client(
                        self.load_prefix, self._port, target.path, target.models[1], target.key,
                        concurrency=n, rounds=a.rounds, ramp=a.chunks * a.interval,
                        chunks=a.chunks, interval=a.interval,
                    )  # fmt: skip
                if self._pid:
                    chunks = max(1, row["streams_ok"] * a.chunks)
                    row["cpu_us_per_chunk"] = round((self._cpu() - cpu0) * 1e6 / chunks, 1)
                    row["peak_rss_mib"] = round(rss.peak / 2**20, 1)
                rows[str(n)] = row

    def _soak(self, target: Target, up: int) -> None:
        """Mixed load for SOAK seconds: wrk at c=16 beside 100 streams, RSS sampled every 5 s."""
        a = self.args
        log(f"soak for {a.soak}s on {target.name}: whole answers at c=16 beside 100 concurrent streams")
        box: dict[str, Any] = {}
        with self._serve(target, up, [], "soak"):
            url = f"http://127.0.0.1:{self._port}{target.path}"

            def whole() -> None:
                box["whole"] = wrk(self.load_prefix, url, target.models[0], target.key, 16, a.soak)

            thread = threading.Thread(target=whole, daemon=True)
            with RssSampler(self._pid or os.getpid(), 5.0) as rss:
                thread.start()
                box["streams"] = stream_client(
                    self.load_prefix, self._port, target.path, target.models[1], target.key,
                    concurrency=100, duration=a.soak, ramp=a.chunks * a.interval,
                    chunks=a.chunks, interval=a.interval,
                )  # fmt: skip
                thread.join(a.soak + WRK_TIMEOUT_SLACK + 10)
        # The first minute (or tenth) fills thread stacks, pools and caches; growth counts from there.
        warm = min(60.0, a.soak / 10)
        start = next((b for t, b in rss.series if t >= warm), rss.series[0][1])
        end = rss.series[-1][1]
        self.results["soak"] = {
            "target": target.name,
            "seconds": a.soak,
            "rss_start_mib": round(start / 2**20, 1),
            "rss_end_mib": round(end / 2**20, 1),
            "rss_peak_mib": round(rss.peak / 2**20, 1),
            "rss_growth_pct": round((end - start) * 100 / start, 1),
            "whole": box.get("whole"),
            "streams": box["streams"],
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    names = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    parser.add_argument("--quick", action="store_true", help="shorter runs: about three minutes in all")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of wrk warm-up per target")
    parser.add_argument("--concurrency", type=ints, default=[1, 16, 64], help="wrk connections, e.g. 1,16,64")
    parser.add_argument("--streams", type=ints, default=[500, 1000], help="concurrent streams, e.g. 500,1000")
    parser.add_argument("--rounds", type=int, default=3, help="streams each stream client runs in turn")
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between upstream chunks")
    parser.add_argument("--stream-cpus", default="all", help="server CPUs in the stream runs: 0 or all")
    parser.add_argument("--stores", type=names, default=None, help="sqlite,postgresql (default: reachable)")
    parser.add_argument("--soak", type=int, default=0, help="seconds of soak after the rest (0: none)")
    parser.add_argument("--skip-whole", action="store_true")
    parser.add_argument("--skip-streams", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.concurrency, args.rounds = 5, 2, [1, 64], 2
    if args.stores is None:
        args.stores = ["sqlite"] + (["postgresql"] if postgres_url() else [])
    return args


def main(argv: list[str] | None = None) -> int:
    if "--scale" in (sys.argv[1:] if argv is None else argv):  # the 10-million-row usage benchmark
        from bench import scale

        return scale.main(argv)
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

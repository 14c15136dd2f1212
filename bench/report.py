"""Turn a `make bench` result into Markdown tables, with each target of issue 7 marked met or missed."""

from __future__ import annotations

from typing import Any


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _check(ok: bool) -> str:
    return "met" if ok else "**missed**"


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return (target, measured, verdict) rows for the targets that this run measured."""
    rows = []
    whole = {r["concurrency"]: r for r in results.get("whole", [])}
    if 1 in whole:
        r = whole[1]
        rows.append(
            (
                "added latency p50 at c=1 <= 1.5 ms",
                f"{r['added_p50_ms']:.2f} ms",
                _check(r["added_p50_ms"] <= 1.5),
            )
        )
        rows.append(
            (
                "added latency p99 at c=1 <= 3 ms",
                f"{r['added_p99_ms']:.2f} ms",
                _check(r["added_p99_ms"] <= 3),
            )
        )
    if 64 in whole:
        g = whole[64]["gateway"]
        rows.append(("req/s per core at c=64 >= 800", f"{g['rps']:.0f}", _check(g["rps"] >= 800)))
        cpu = g["cpu_us_per_request"]
        rows.append(("CPU per request <= 1.25 ms", f"{cpu / 1000:.3f} ms", _check(cpu <= 1250)))
    streams = {r["concurrency"]: r for r in results.get("streams", [])}
    if 1000 in streams:
        r = streams[1000]
        g = r["gateway"]
        rows.append(("1,000 streams: 0 errors", str(g["errors"]), _check(g["errors"] == 0)))
        ttfb, gap = r["added_ttfb_p50_ms"], r["added_gap_p99_ms"]
        rows.append(("added TTFB p50 <= 50 ms", f"{_f(ttfb)} ms", _check(ttfb is not None and ttfb <= 50)))
        rows.append(
            ("added inter-chunk gap p99 <= 10 ms", f"{_f(gap)} ms", _check(gap is not None and gap <= 10))
        )
        rss = g["peak_rss_mib"]
        rows.append(("process-tree RSS <= 512 MiB", f"{rss:.0f} MiB", _check(rss <= 512)))
    soak = results.get("soak")
    if soak:
        growth = soak["rss_growth_pct"]
        rows.append(("soak RSS growth <= 10 %", f"{growth:.1f} %", _check(growth <= 10)))
    return rows


def markdown(results: dict[str, Any]) -> str:
    m, s = results["machine"], results["setup"]
    out = [
        f"### `make bench` — {m['date']}",
        "",
        f"Machine: {m['nproc']} cores, {m['cpu_model']}, Python {m['python']}, Linux {m['kernel']}. "
        f"Database: {s['database']}; gunicorn {s['gunicorn_workers']} worker(s) "
        f"(threads: {s['gunicorn_threads']}); gateway on CPU {s['gateway_cpus']} "
        f"(streams: CPU {s['stream_gateway_cpus']}), upstream and load generators on CPU {s['load_cpus']}.",
        "",
    ]
    if results.get("whole"):
        out += [
            f"Whole answers (wrk, {s['duration_s']} s per run):",
            "",
            "| c | direct req/s | gateway req/s | direct p50 / p99 ms | gateway p50 / p99 ms "
            "| added p50 / p99 ms | gateway CPU µs/req | errors |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["whole"]:
            d, g = r["direct"], r["gateway"]
            out.append(
                f"| {r['concurrency']} | {d['rps']:.0f} | {g['rps']:.0f} "
                f"| {d['p50_us'] / 1000:.2f} / {d['p99_us'] / 1000:.2f} "
                f"| {g['p50_us'] / 1000:.2f} / {g['p99_us'] / 1000:.2f} "
                f"| {r['added_p50_ms']:.2f} / {r['added_p99_ms']:.2f} | {g['cpu_us_per_request']:.0f} "
                f"| {d['errors']} / {g['errors']} |"
            )
        out.append("")
    if results.get("streams"):
        out += [
            "Streams (50 chunks 50 ms apart; asyncio client; direct / gateway):",
            "",
            "| concurrent | errors | TTFB p50 ms | TTFB p99 ms | gap p99 ms | added TTFB p50 / p99 ms "
            "| added gap p99 ms | gateway CPU µs/chunk | gateway peak RSS MiB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["streams"]:
            d, g = r["direct"], r["gateway"]
            out.append(
                f"| {r['concurrency']} | {d['errors']} / {g['errors']} "
                f"| {_f(d['ttfb_p50_ms'])} / {_f(g['ttfb_p50_ms'])} "
                f"| {_f(d['ttfb_p99_ms'])} / {_f(g['ttfb_p99_ms'])} "
                f"| {_f(d['gap_p99_ms'])} / {_f(g['gap_p99_ms'])} "
                f"| {_f(r['added_ttfb_p50_ms'])} / {_f(r['added_ttfb_p99_ms'])} "
                f"| {_f(r['added_gap_p99_ms'])} | {g['cpu_us_per_chunk']:.0f} | {g['peak_rss_mib']:.0f} |"
            )
        out.append("")
    soak = results.get("soak")
    if soak:
        out += [
            f"Soak ({soak['seconds']} s, whole answers at c=16 beside 100 streams): RSS "
            f"{soak['rss_start_mib']:.0f} MiB at start, {soak['rss_end_mib']:.0f} MiB at end "
            f"(peak {soak['rss_peak_mib']:.0f}), growth {soak['rss_growth_pct']:.1f} %; "
            f"stream errors {soak['streams']['errors']}.",
            "",
        ]
    rows = targets(results)
    if rows:
        out += ["| target (issue 7) | measured | |", "|---|---:|---|"]
        out += [f"| {t} | {v} | {ok} |" for t, v, ok in rows]
        out.append("")
    billing = results.get("billing")
    if billing:
        out.append(
            f"Billing was on: the bench user's balance went to {billing['balance_micros'] / 1e6:.6f} USD "
            f"with {billing['held_micros']} micro-USD still held."
        )
        out.append("")
    return "\n".join(out)

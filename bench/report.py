"""Turn a `make bench` result into Markdown: each target's figures, then issue 16's ratios, MET or MISSED."""

from __future__ import annotations

from typing import Any

RSS_TODAY_MIB = 170  # the gateway's tree at 1,000 streams before issue 16 (README, 2026-11-26)


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("MET" if ok else "**MISSED**")


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return (target, measured, verdict) rows for what this run measured."""
    whole, streams, rows = results.get("whole", {}), results.get("streams", {}), []
    gateways = [t for t in results["targets"] if t.startswith("gateway-")]
    floor_w, floor_s = whole.get("floor", {}), streams.get("floor", {})
    for name in gateways:
        store = name.removeprefix("gateway-")
        g = whole.get(name, {})
        if "64" in g and "64" in floor_w:
            cpu = _ratio(g["64"]["cpu_us_per_request"], floor_w["64"]["cpu_us_per_request"])
            rps = _ratio(g["64"]["rps"], floor_w["64"]["rps"])
            rows.append((f"{store}: CPU/request at c=64 ≤ 1.5× floor", f"{cpu:.2f}×", _verdict(cpu <= 1.5)))
            rows.append((f"{store}: req/s at c=64 ≥ 0.6× floor", f"{rps:.2f}×", _verdict(rps >= 0.6)))
        if store == "sqlite" and "1" in g and "1" in floor_w:
            added = (g["1"]["p50_us"] - floor_w["1"]["p50_us"]) / 1000
            rows.append(("sqlite: added p50 latency at c=1 ≤ 1 ms", f"{added:.2f} ms", _verdict(added <= 1)))
        s = streams.get(name, {})
        direct = streams.get("direct", {})
        if "500" in s and "500" in floor_s:
            cpu = _ratio(s["500"]["cpu_us_per_chunk"], floor_s["500"]["cpu_us_per_chunk"])
            rows.append((f"{store}: CPU/chunk at 500 ≤ 1.2× floor", f"{cpu:.2f}×", _verdict(cpu <= 1.2)))
        if "500" in s:
            active = s["500"]["peak_receiving"] / 500
            rows.append((f"{store}: 500 streams ≥ 95 % active", f"{active:.0%}", _verdict(active >= 0.95)))
            if "500" in direct and s["500"]["gap_p99_ms"] is not None:
                gap = s["500"]["gap_p99_ms"] - direct["500"]["gap_p99_ms"]
                rows.append(
                    (f"{store}: 500 streams added gap p99 ≤ 50 ms", f"{gap:.1f} ms", _verdict(gap <= 50))
                )
        if "1000" in s:
            errors = s["1000"]["errors"]
            rows.append((f"{store}: 1,000 streams, no error", str(errors), _verdict(errors == 0)))
            rss = s["1000"]["peak_rss_mib"]
            rows.append(
                (f"{store}: RSS at 1,000 streams ≤ {RSS_TODAY_MIB} MiB (today)", f"{rss:.0f} MiB",
                 _verdict(rss <= RSS_TODAY_MIB))
            )  # fmt: skip
    soak = results.get("soak")
    if soak:
        growth = soak["rss_growth_pct"]
        rows.append(("soak RSS growth ≤ 10 %", f"{growth:.1f} %", _verdict(growth <= 10)))
    return rows


def markdown(results: dict[str, Any]) -> str:
    m, s = results["machine"], results["setup"]
    out = [
        f"### `make bench` — {m['date']}",
        "",
        f"Machine: {m['nproc']} cores, {m['cpu_model']}, Python {m['python']}, Linux {m['kernel']}. "
        f"Whole answers: server on CPU {s['server_cpus']}, upstream and wrk on CPU {s['load_cpus']}, "
        f"{s['duration_s']} s a run. Streams: server on CPU {s['stream_cpus']}, {s['chunks']} chunks "
        f"{s['interval_ms']} ms apart, {s['rounds']} rounds. The floor (bench/floor.py) is the reference, "
        "not the product.",
        "",
    ]
    whole = results.get("whole", {})
    if whole:
        out += [
            "| whole answers | c | req/s | p50 / p99 ms | CPU µs/req | errors |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, rows in whole.items():
            for c, r in rows.items():
                out.append(
                    f"| {name} | {c} | {r['rps']:,.0f} | {r['p50_us'] / 1000:.2f} / {r['p99_us'] / 1000:.2f} "
                    f"| {_f(r.get('cpu_us_per_request'), 0)} | {r['errors']} |"
                )
        out.append("")
    streams = results.get("streams", {})
    if streams:
        out += [
            "| streams | concurrent | ok | errors | peak active | TTFB p50 / p99 ms | gap p99 ms "
            "| CPU µs/chunk | peak RSS MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, rows in streams.items():
            for n, r in rows.items():
                out.append(
                    f"| {name} | {n} | {r['streams_ok']} | {r['errors']} | {r['peak_receiving']} "
                    f"| {_f(r['ttfb_p50_ms'])} / {_f(r['ttfb_p99_ms'])} | {_f(r['gap_p99_ms'])} "
                    f"| {_f(r.get('cpu_us_per_chunk'), 0)} | {_f(r.get('peak_rss_mib'), 0)} |"
                )
        out.append("")
    soak = results.get("soak")
    if soak:
        out += [
            f"Soak on {soak['target']} ({soak['seconds']} s, whole answers at c=16 beside 100 streams): "
            f"RSS {soak['rss_start_mib']:.0f} → {soak['rss_end_mib']:.0f} MiB (peak "
            f"{soak['rss_peak_mib']:.0f}), growth {soak['rss_growth_pct']:.1f} %; stream errors "
            f"{soak['streams']['errors']}.",
            "",
        ]
    rows = targets(results)
    if rows:
        out += ["| target (issue 16) | measured | |", "|---|---:|---|"]
        out += [f"| {t} | {v} | {ok} |" for t, v, ok in rows]
        out.append("")
    return "\n".join(out)

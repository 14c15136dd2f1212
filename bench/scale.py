"""`make bench BENCH_ARGS=--scale`: usage reports and settlement with 10 million usage rows in PostgreSQL.

In a throwaway schema: users and keys, then ROWS usage rows over DAYS days bulk-loaded with
generate_series, the hourly and daily sums backfilled as `gateway db init` does on upgrade, then
timed: the console usage page's queries (everyone's and one user's), `gateway usage --by day`, the
same sums straight from the raw rows (what the reports did before), and a reserve + settle, empty
vs full.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import event, text

from bench.procs import log
from bench.servers import REPO, database, postgres_url
from gateway.cli import main as cli
from gateway.console.balance import usage_report
from gateway.store import aggregates, billing
from gateway.store.billing import Hold, UsageRecord
from gateway.store.database import Database

LOAD_CHUNK = 1_000_000


def timed(fn, repeat: int) -> float:
    """Return the median wall time of fn() in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def settle_cost(db: Database, n: int, tag: str) -> dict[str, float]:
    """Reserve and settle n requests of user 1, one transaction each as the relay does.

    A CHECKPOINT first, so no flush of earlier writes (the bulk load's) competes with the commits
    timed; returns the median, p90 and p99 of one reserve + settle pair, and the mean, in µs.
    """
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CHECKPOINT"))
    times = []
    for i in range(n):
        hold = Hold(f"{tag}-{i}", 1, 1, "fake:chat", 1000)
        start = time.perf_counter()
        now = datetime.now(UTC)
        with db.session_scope() as conn:
            billing.reserve(conn, hold, now)
        with db.session_scope() as conn:
            billing.settle(conn, hold, UsageRecord(200, "ok", False, 10, 20, cost_micros=50), now)
        times.append((time.perf_counter() - start) * 1e6)
    cuts = statistics.quantiles(times, n=100)
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "mean": statistics.fmean(times)}


def settle_plans(db: Database) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the statements of one reserve and one settle, rolled back.

    The statements are caught as the driver gets them, so this follows billing's SQL as it is.
    """
    hold = Hold("explain-1", 1, 1, "fake:chat", 1000)
    now = datetime.now(UTC)
    caught: list[tuple[str, object]] = []

    def catch(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        caught.append((statement, parameters))

    with db.engine.connect() as conn:
        event.listen(conn, "before_cursor_execute", catch)
        billing.reserve(conn, hold, now)
        billing.settle(conn, hold, UsageRecord(200, "ok", False, 10, 20, cost_micros=50), now)
        event.remove(conn, "before_cursor_execute", catch)
        conn.rollback()
        plans = []
        for statement, parameters in caught:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
            plans.append(" ".join(statement.split())[:120] + "\n" + "\n".join(r[0] for r in rows))
        conn.rollback()
    return "\n\n".join(plans) + "\n"


def load_accounts(db: Database, users: int) -> None:
    """Bulk-load the users and one key each."""
    with db.session_scope() as conn:
        conn.execute(
            text(
                "INSERT INTO users (email, balance_micros) SELECT 'u' || g || '@bench.test', 1000000000000"
                " FROM generate_series(1, :n) g"
            ),
            {"n": users},
        )
        conn.execute(
            text(
                "INSERT INTO api_keys (user_id, key_hash, prefix) SELECT g, md5(g::text) || md5(g::text),"
                " 'sk-b' || g FROM generate_series(1, :n) g"
            ),
            {"n": users},
        )


def run(rows: int, users: int, days: int, settles: int, repeat: int, workdir: Path) -> dict:
    results: dict = {"rows": rows, "users": users, "days": days}
    with database("postgresql", workdir) as url:
        db = Database(url, pool_size=2)
        db.create_schema()
        load_accounts(db, users)
        results["settle_us_empty"] = settle_cost(db, settles, "empty")
        with db.session_scope() as conn:
            conn.execute(text("DELETE FROM usage_hourly"))
            conn.execute(text("DELETE FROM usage_daily"))
        results["load_s"] = load_usage(db, rows, users, days)
        start = time.perf_counter()
        with db.session_scope() as conn:
            aggregates.backfill(conn)
        results["backfill_s"] = time.perf_counter() - start
        start = time.perf_counter()
        with db.session_scope() as conn:
            aggregates.backfill_daily(conn)
        results["backfill_daily_s"] = time.perf_counter() - start
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE usage_records"))
            conn.execute(text("VACUUM ANALYZE usage_hourly"))
            conn.execute(text("VACUUM ANALYZE usage_daily"))
            results["hourly_rows"] = conn.execute(text("SELECT count(*) FROM usage_hourly")).scalar_one()
            results["daily_rows"] = conn.execute(text("SELECT count(*) FROM usage_daily")).scalar_one()
        results["console_all_ms"] = timed(lambda: usage_report(db, None), repeat)
        results["console_user_ms"] = timed(lambda: usage_report(db, 1), repeat)
        runner = CliRunner()

        def by_day() -> None:
            out = runner.invoke(
                cli, ["usage", "--by", "day"], env={"DATABASE_URL": url, "GATEWAY_CONFIG": ""}
            )
            assert out.exit_code == 0, out.output

        results["cli_by_day_ms"] = timed(by_day, repeat)
        raw = text(
            "SELECT to_char(timezone('UTC', created_at), 'YYYY-MM-DD') d, count(*), sum(cost_micros)"
            " FROM usage_records GROUP BY d"
        )

        def raw_by_day() -> None:
            with db.session_scope() as conn:
                conn.execute(raw).all()

        results["raw_by_day_ms"] = timed(raw_by_day, 1)
        results["settle_us_full"] = settle_cost(db, settles, "full")
        (workdir / "scale-latest-plans.txt").write_text(settle_plans(db))
        db.dispose()
    return results


def load_usage(db: Database, rows: int, users: int, days: int) -> float:
    start = time.perf_counter()
    for first in range(0, rows, LOAD_CHUNK):
        with db.session_scope() as conn:
            conn.execute(
                text(
                    "INSERT INTO usage_records (request_id, user_id, key_id, model, prompt_tokens,"
                    " completion_tokens, cost_micros, status, outcome, created_at)"
                    " SELECT 'b' || g, 1 + g % :u, 1 + g % :u,"
                    " (ARRAY['fake:chat','fake:slow','a:b','c:d'])[1 + g % 4],"
                    " 100 + g % 50, 50 + g % 20, 200 + g % 7, 200, 'ok',"
                    " now() - make_interval(secs => (:rows - g)::float8 / :rows * :days * 86400)"
                    " FROM generate_series(:first, :last) g"
                ),
                {
                    "u": users,
                    "rows": rows,
                    "days": days,
                    "first": first + 1,
                    "last": min(rows, first + LOAD_CHUNK),
                },
            )
        log(f"loaded {min(rows, first + LOAD_CHUNK):,} usage rows")
    return time.perf_counter() - start


def markdown(r: dict) -> str:
    return "\n".join(
        [
            f"Usage at scale: {r['rows']:,} usage rows ({r['users']:,} users, {r['days']} days), "
            f"{r['hourly_rows']:,} hourly sums, {r['daily_rows']:,} daily sums, PostgreSQL",
            "",
            "| measure | value |",
            "|---|---|",
            f"| bulk load of the usage rows | {r['load_s']:.0f} s |",
            f"| backfill of the hourly sums (db init on upgrade) | {r['backfill_s']:.1f} s |",
            f"| backfill of the daily sums from the hourly ones | {r['backfill_daily_s']:.1f} s |",
            f"| console usage page, everyone (admin) | {r['console_all_ms']:.0f} ms |",
            f"| console usage page, one user | {r['console_user_ms']:.0f} ms |",
            f"| `gateway usage --by day` (in process) | {r['cli_by_day_ms']:.0f} ms |",
            f"| the same sums from the raw rows (before) | {r['raw_by_day_ms']:.0f} ms |",
            *(
                f"| reserve + settle, {label} (p50 / p90 / p99, mean) | "
                + " / ".join(f"{r[key][q]:,.0f}" for q in ("p50", "p90", "p99"))
                + f", {r[key]['mean']:,.0f} µs |"
                for label, key in (("empty table", "settle_us_empty"), ("full table", "settle_us_full"))
            ),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", action="store_true", help="(how make bench selects this benchmark)")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--settles", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench")
    args = parser.parse_args(argv)
    if postgres_url() is None:
        log("the scale benchmark needs PostgreSQL: set DATABASE_URL or GATEWAY_TEST_POSTGRES_URL")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    results = run(args.rows, args.users, args.days, args.settles, args.repeat, args.out)
    (args.out / "scale-latest.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.out / "scale-latest.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""In-process CPU of the money path: N reserve+settle pairs, and N whole requests through the test client.

`python -m bench.money_path [--store sqlite|postgresql] [-n N] [--profile]`: best of 5 runs, in µs per
pair and per request, on a fresh SQLite file or a throwaway PostgreSQL schema (bench/servers.py `database`).
Whole requests use the built-in mock provider with prices, so they bill like real ones but do no I/O
upstream: the figures are the gateway's own work. --profile prints cProfile's top functions instead.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path

from sqlalchemy import update

from bench.servers import database
from gateway import create_app
from gateway.store import billing
from gateway.store.billing import Hold, UsageRecord
from gateway.store.keys import create_key
from gateway.store.tables import users
from gateway.store.users import create_user

PRICED = {"priced": {"type": "mock", "models": {"echo": {"input_price": 1.0, "output_price": 2.0}}}}
BODY = {"model": "priced:echo", "messages": [{"role": "user", "content": "Hi there"}], "max_tokens": 16}
RUNS = 5


def best(label: str, n: int, once: Callable[[], None]) -> float:
    """Run `once` n times per run, RUNS runs; print and return the best run's µs per call."""
    figures = []
    for _ in range(RUNS):
        start = time.process_time()
        for _ in range(n):
            once()
        figures.append((time.process_time() - start) * 1e6 / n)
    print(f"{label}: best {min(figures):.0f} µs, runs {' '.join(f'{f:.0f}' for f in figures)}")
    return min(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--profile", choices=("pair", "request"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, database(args.store, Path(work)) as url:
        spool = os.path.join(work, "spool")
        config = {"database_url": url, "providers": PRICED, "key_cache_ttl": 60.0, "spool_dir": spool}
        app = create_app(config)
        services = app.extensions["gateway"]
        db, clock = services.db, services.clock
        db.create_schema()
        with db.session_scope() as conn:
            user_id = create_user(conn, "bench@example.com")
            conn.execute(update(users).where(users.c.id == user_id).values(balance_micros=10**14))
            key_id, minted = create_key(conn, user_id)
        ids = count()
        record = UsageRecord(status=200, outcome="ok", stream=False, prompt_tokens=10, cost_micros=30)

        def pair() -> None:
            now = clock.now()
            hold = Hold(f"bench-{next(ids)}", user_id, key_id, "priced:echo", 1000, created_at=now)
            with db.session_scope() as conn:
                billing.reserve(conn, hold, now)
            with db.session_scope(autocommit=True) as conn:  # as relay/settlement.py does
                billing.settle(conn, hold, record, clock.now())

        client = app.test_client()
        headers = {"Authorization": f"Bearer {minted.secret}"}

        def request() -> None:
            resp = client.post("/api/v1/chat/completions", json=BODY, headers=headers)
            assert resp.status_code == 200, resp.get_data(as_text=True)

        pair()
        request()
        if args.profile:
            once = pair if args.profile == "pair" else request
            profiler = cProfile.Profile()
            profiler.runcall(lambda: [once() for _ in range(args.n)])
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        else:
            best(f"{args.store} reserve+settle", args.n, pair)
            best(f"{args.store} whole request", args.n, request)
        db.dispose()


if __name__ == "__main__":
    main()

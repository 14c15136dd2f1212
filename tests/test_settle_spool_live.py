"""A settlement the store refuses (a lock held by another process) is written after it, exactly once.

SQLite: another process holds BEGIN EXCLUSIVE longer than the settle's every try (busy_timeout 10 s
each); PostgreSQL: another connection holds the user's and key's row locks. Meanwhile another
gateway process sharing the spool folder sweeps with a hold_timeout the hold has outlived.
"""

from __future__ import annotations

import subprocess
import sys
import time

from sqlalchemy import func, select, text

from gateway.relay.spool import Spool
from gateway.store.tables import api_keys, holds, usage_records, users
from tests.support.app import chat, make_account, services

PRICED = {"priced": {"type": "mock", "models": {"echo": {"input_price": 1.0, "output_price": 2.0}}}}
# Longer than the three settle tries the gateway made before it had a spool (3 x 10 s busy_timeout).
SQLITE_LOCK_S = 32.0
PG_LOCK_S = 8.0


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""
PG_LOCKER = """
import sys, time, psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("SET search_path TO " + sys.argv[3])
cur.execute("SELECT id FROM users FOR UPDATE")
cur.execute("SELECT id FROM api_keys FOR UPDATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.rollback()
"""


def lock_store(app) -> subprocess.Popen:
    """Lock the store from another process for a while: SQLite's file, or PostgreSQL's rows."""
    engine = services(app).db.engine
    if engine.dialect.name == "sqlite":
        args = [sys.executable, "-c", LOCKER, str(engine.url.database), str(SQLITE_LOCK_S)]
    else:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        plain = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        args = [sys.executable, "-c", PG_LOCKER, plain.split("?")[0], str(PG_LOCK_S), schema]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_settlement_blocked_by_a_lock_is_written_once_after_it(make_app, tmp_path):
    app = make_app(providers=PRICED, spool_dir=str(tmp_path / "spool"), hold_timeout=2.0)
    # Another gateway process on this host, sharing the spool folder, sweeping meanwhile.
    other = make_app(providers=PRICED, spool_dir=str(tmp_path / "spool"), hold_timeout=2.0)
    acct = make_account(app, email="a@example.com", balance_micros=1_000_000)
    client = app.test_client()
    resp = client.post(
        "/api/v1/chat/completions", headers=acct.headers, json=chat("priced:echo", "one two", stream=True)
    )
    request_id = resp.headers["X-Request-Id"]
    locker = lock_store(app)
    try:
        body = resp.get_data()  # the stream ends and settles, or spools, here
    finally:
        locker.wait(60)
    assert b"[DONE]" in body
    time.sleep(2.5)  # the hold is now older than hold_timeout
    services(other).relay.settlement._next_sweep = 0.0
    services(other).relay.settlement.sweep_if_due()

    def rows():
        with services(app).db.session_scope() as conn:
            query = select(usage_records).where(usage_records.c.request_id == request_id)
            return conn.execute(query).all()

    assert wait_for(lambda: len(rows()) == 1, 10), "the spooled settlement was never written"
    time.sleep(1.5)  # a second replay, if there were one, would have run by now
    [row] = rows()
    assert row.outcome == "ok" and row.cost_micros > 0, "the sweep took the spooled hold at cost 0"
    with services(app).db.session_scope() as conn:
        balance, held = conn.execute(
            select(users.c.balance_micros, users.c.held_micros).where(users.c.id == acct.user_id)
        ).one()
        spent = conn.execute(select(api_keys.c.spent_micros).where(api_keys.c.id == acct.key_id)).scalar()
        left = conn.execute(select(func.count()).select_from(holds)).scalar_one()
    assert (balance, held, spent, left) == (1_000_000 - row.cost_micros, 0, row.cost_micros, 0)
    assert Spool(str(tmp_path / "spool")).pending() == []

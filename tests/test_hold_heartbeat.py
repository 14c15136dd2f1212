"""Live holds are refreshed and never swept; a spooled settlement is written exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from gateway.clock import SYSTEM
from gateway.relay.keeper import HoldKeeper
from gateway.relay.spool import Spool
from gateway.store import billing
from gateway.store.billing import Hold, UsageRecord
from gateway.store.tables import holds, usage_records, users
from tests.support.app import make_account, services

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def reserve(app, acct, request_id: str, at: datetime, amount: int = 1000) -> Hold:
    hold = Hold(request_id, acct.user_id, acct.key_id, "priced:echo", amount)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold, at)
    return hold


def open_holds(app) -> list[str]:
    with services(app).db.session_scope() as conn:
        return sorted(conn.execute(select(holds.c.request_id)).scalars())


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_sweep_takes_only_holds_whose_heartbeat_is_stale(app):
    acct = make_account(app, email="a@example.com", balance_micros=10_000)
    reserve(app, acct, "running", NOW - 3 * HOUR)
    reserve(app, acct, "dead", NOW - 3 * HOUR)
    with services(app).db.session_scope() as conn:
        assert billing.touch(conn, [(acct.user_id, "running")], NOW - timedelta(minutes=1)) == 1
        assert billing.sweep(conn, HOUR, NOW) == 1
    assert open_holds(app) == ["running"], "a request still refreshing its hold was swept"


def test_sweep_leaves_holds_named_in_keep(app):
    acct = make_account(app, email="a@example.com", balance_micros=10_000)
    reserve(app, acct, "spooled", NOW - 3 * HOUR)
    with services(app).db.session_scope() as conn:
        assert billing.sweep(conn, HOUR, NOW, keep={(acct.user_id, "spooled")}) == 0
    assert open_holds(app) == ["spooled"]


def test_keeper_refreshes_live_holds_and_stops_when_idle(app):
    acct = make_account(app, email="a@example.com", balance_micros=10_000)
    reserve(app, acct, "live", datetime.now(UTC) - HOUR)
    keeper = HoldKeeper(services(app).db, SYSTEM, 0.4, set, lambda: None)
    keeper.add((acct.user_id, "live"))

    def beat() -> datetime | None:
        with services(app).db.session_scope() as conn:
            return conn.execute(select(holds.c.heartbeat_at)).scalar_one()

    assert wait_for(lambda: beat() is not None, 3), "the live hold was never refreshed"
    first = beat()
    assert wait_for(lambda: beat() != first, 3), "the heartbeat did not go on"
    keeper.discard((acct.user_id, "live"))
    assert wait_for(lambda: keeper._thread is None, 3), "the keeper thread outlived its holds"


def test_spool_replay_writes_each_settlement_once(app, tmp_path):
    acct = make_account(app, email="a@example.com", balance_micros=10_000)
    hold = reserve(app, acct, "r1", NOW, amount=1000)
    spool = Spool(str(tmp_path / "spool"))
    record = UsageRecord(status=200, outcome="ok", stream=True, prompt_tokens=5, cost_micros=700)
    spool.put(hold, record, NOW)
    spool.put(hold, record, NOW)  # a retry of the same request: one entry, by name
    [entry] = spool.pending()
    assert spool.holds() == {(acct.user_id, "r1")}
    for _ in range(2):  # two workers replaying at once, or a crash before the unlink
        with services(app).db.session_scope() as conn:
            billing.settle(conn, entry.hold, entry.record, entry.settled_at)
    spool.done(entry)
    assert spool.pending() == []
    with services(app).db.session_scope() as conn:
        rows = conn.execute(select(usage_records.c.cost_micros)).scalars().all()
        balance, held = conn.execute(select(users.c.balance_micros, users.c.held_micros)).one()
    assert rows == [700]
    assert (balance, held) == (10_000 - 700, 0)

"""Hourly usage sums: kept by settlement, read by the reports, backfilled at db init, kept past retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, insert, select

from gateway.relay.settlement import Settlement
from gateway.store import aggregates, billing
from gateway.store.billing import Hold, UsageRecord
from gateway.store.tables import usage_daily, usage_hourly, usage_records
from tests.support.app import FixedClock, make_account, services
from tests.support.usage import settle_at, sums

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def hourly(app) -> list[tuple]:
    cols = (usage_hourly.c.hour_at, usage_hourly.c.model, usage_hourly.c.requests, usage_hourly.c.cost_micros)
    with services(app).db.session_scope() as conn:
        rows = conn.execute(select(*cols).order_by(usage_hourly.c.hour_at, usage_hourly.c.model)).all()
    return [(r[0].replace(tzinfo=UTC) if r[0].tzinfo is None else r[0].astimezone(UTC), *r[1:]) for r in rows]


def test_each_settlement_adds_to_its_hours_row(app):
    account = make_account(app, email="h@example.com", balance_micros=10_000)
    settle_at(app, account, T0 + timedelta(minutes=1), "r1")
    settle_at(app, account, T0 + timedelta(minutes=59), "r2", cost=7)
    settle_at(app, account, T0 + timedelta(minutes=60), "r3")
    settle_at(app, account, T0 + timedelta(minutes=61), "r4", model="mock:other")
    assert hourly(app) == [
        (T0, "mock:echo", 2, 17),
        (T0 + timedelta(hours=1), "mock:echo", 1, 10),
        (T0 + timedelta(hours=1), "mock:other", 1, 10),
    ]


def test_a_settlement_that_changes_nothing_adds_nothing(app):
    account = make_account(app, email="h@example.com", balance_micros=10_000)
    settle_at(app, account, T0, "r1")
    hold = Hold("r1", account.user_id, account.key_id, "mock:echo", 100)
    with services(app).db.session_scope() as conn:
        assert not billing.settle(
            conn, hold, UsageRecord(status=200, outcome="ok", stream=False, cost_micros=5), T0
        )
    assert hourly(app) == [(T0, "mock:echo", 1, 10)]


def test_sums_from_a_moment_inside_an_hour_are_exact(app):
    account = make_account(app, email="h@example.com", balance_micros=10_000)
    for minute, rid in ((10, "early"), (40, "late"), (70, "next"), (24 * 60 + 5, "tomorrow")):
        settle_at(app, account, T0 + timedelta(minutes=minute), rid)
    since = T0 + timedelta(minutes=30)  # "early" falls in the same hour, before it: not counted
    days = sums(app, "day", since=since)
    assert [(d["day"], d["requests"], d["cost_micros"]) for d in days] == [
        ("2026-11-30", 2, 20),
        ("2026-12-01", 1, 10),
    ]
    assert sums(app, "user", since=since)[0]["requests"] == 3
    assert sums(app, "model", user_id=account.user_id)[0]["requests"] == 4
    assert sums(app, "key", key_id=account.key_id, since=T0 + timedelta(hours=1))[0]["requests"] == 2


def test_retention_deletes_old_rows_in_batches_and_the_sums_stay(app):
    account = make_account(app, email="h@example.com", balance_micros=10_000)
    for i in range(5):
        settle_at(app, account, T0 - timedelta(days=40, minutes=i), f"old{i}")
    settle_at(app, account, T0, "new")
    before = sums(app, "day")
    with services(app).db.session_scope() as conn:
        assert aggregates.prune_batch(conn, 30, T0, batch=3) == 3
        assert aggregates.prune_batch(conn, 30, T0, batch=3) == 2
        assert aggregates.prune_batch(conn, 30, T0, batch=3) == 0
        left = conn.execute(select(usage_records.c.request_id)).scalars().all()
    assert left == ["new"]
    assert sums(app, "day") == before


def test_the_settlement_prunes_past_the_retention_setting(make_app):
    clock = FixedClock(T0)
    app = make_app(clock=clock, usage_retention_days=30)
    account = make_account(app, email="h@example.com", balance_micros=10_000)
    settle_at(app, account, T0 - timedelta(days=31), "old")
    settle_at(app, account, T0 - timedelta(days=29), "kept")
    relay = services(app).relay
    settlement = Settlement(relay.settings, relay.db, clock, relay.observers)
    settlement.prune_if_due()
    with services(app).db.session_scope() as conn:
        assert conn.execute(select(usage_records.c.request_id)).scalars().all() == ["kept"]
    assert sum(d["requests"] for d in sums(app, "day")) == 2, "the sums keep the deleted row"


def test_db_init_backfills_the_sums_from_existing_rows_once(app):
    account = make_account(app, email="h@example.com", balance_micros=10_000)
    row = dict(
        user_id=account.user_id,
        key_id=account.key_id,
        model="mock:echo",
        status=200,
        outcome="ok",
        cost_micros=4,
    )
    db = services(app).db
    with db.session_scope() as conn:  # rows written by a version that kept no sums
        for i, minute in enumerate((5, 6, 65)):
            conn.execute(
                insert(usage_records).values(
                    request_id=f"r{i}", created_at=T0 + timedelta(minutes=minute), **row
                )
            )
        conn.execute(delete(usage_hourly))
    db.create_schema()
    db.create_schema()
    assert hourly(app) == [(T0, "mock:echo", 2, 8), (T0 + timedelta(hours=1), "mock:echo", 1, 4)]
    with db.session_scope() as conn:
        assert conn.execute(select(func.sum(usage_hourly.c.requests))).scalar_one() == 3
        # The daily sums are backfilled from the hourly ones, in the same init, once.
        assert conn.execute(select(usage_daily.c.requests, usage_daily.c.cost_micros)).all() == [(3, 12)]

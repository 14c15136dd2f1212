"""Daily usage sums: kept by settlement beside the hourly ones, and read in tiers (whole days from the
daily sums, whole hours from the hourly ones, the part of an hour from the raw rows), exactly."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.store import aggregates, team_usage, teams
from gateway.store.keys import create_key
from gateway.store.tables import usage_daily, usage_hourly, usage_records
from tests.support.app import Account, make_account, services
from tests.support.usage import settle_at, sums

T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # a midnight
# Requests over three UTC days, at minutes that fall on and around hour and day boundaries.
MINUTES = (0, 5, 59, 60, 61, 23 * 60 + 59, 24 * 60, 24 * 60 + 1, 36 * 60 + 30, 48 * 60 - 1, 48 * 60 + 10)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def daily(app) -> list[tuple]:
    cols = (usage_daily.c.day_at, usage_daily.c.model, usage_daily.c.requests, usage_daily.c.cost_micros)
    with services(app).db.session_scope() as conn:
        rows = conn.execute(select(*cols).order_by(usage_daily.c.day_at, usage_daily.c.model)).all()
    return [(_utc(r[0]), *r[1:]) for r in rows]


def test_each_settlement_adds_to_its_days_row(app):
    account = make_account(app, email="d@example.com", balance_micros=100_000)
    settle_at(app, account, T0 + timedelta(hours=1), "r1")
    settle_at(app, account, T0 + timedelta(hours=23, minutes=59), "r2", cost=7)
    settle_at(app, account, T0 + timedelta(days=1), "r3")
    settle_at(app, account, T0 + timedelta(days=1, hours=5), "r4", model="mock:other")
    assert daily(app) == [
        (T0, "mock:echo", 2, 17),
        (T0 + timedelta(days=1), "mock:echo", 1, 10),
        (T0 + timedelta(days=1), "mock:other", 1, 10),
    ]


def test_tiers_read_whole_days_then_whole_hours_then_the_part_of_an_hour():
    since = T0 + timedelta(hours=5, minutes=30)
    assert aggregates.tiers(since) == [
        (usage_daily, T0 + timedelta(days=1), None),
        (usage_hourly, T0 + timedelta(hours=6), T0 + timedelta(days=1)),
        (usage_records, since, T0 + timedelta(hours=6)),
    ]
    assert aggregates.tiers(T0) == [(usage_daily, T0, None)]
    assert aggregates.tiers(T0 + timedelta(hours=3)) == [
        (usage_daily, T0 + timedelta(days=1), None),
        (usage_hourly, T0 + timedelta(hours=3), T0 + timedelta(days=1)),
    ]
    assert aggregates.tiers(None) == [(usage_daily, None, None)]


def _raw(app, since: datetime | None) -> tuple[Counter, int]:
    """Requests per UTC day and the total cost, straight from the raw rows."""
    with services(app).db.session_scope() as conn:
        rows = conn.execute(select(usage_records.c.created_at, usage_records.c.cost_micros)).all()
    kept = [(_utc(at), cost) for at, cost in rows if since is None or _utc(at) >= since]
    return Counter(at.strftime("%Y-%m-%d") for at, _ in kept), sum(cost for _, cost in kept)


@pytest.mark.parametrize(
    "offset",
    [
        None,
        timedelta(minutes=30),  # inside the first hour
        timedelta(hours=1),  # on an hour boundary
        timedelta(days=1),  # on a day boundary
        timedelta(days=1, minutes=1),  # just after midnight: the first minute is raw
        timedelta(hours=23, minutes=59, seconds=30),  # inside the last minute of a day
    ],
)
def test_sums_from_any_moment_equal_the_raw_rows(app, offset):
    account = make_account(app, email="d@example.com", balance_micros=1_000_000)
    for i, minute in enumerate(MINUTES):
        settle_at(app, account, T0 + timedelta(minutes=minute), f"r{i}", cost=i + 1)
    since = None if offset is None else T0 + offset
    per_day, cost = _raw(app, since)
    days = sums(app, "day", since=since)
    assert {d["day"]: d["requests"] for d in days} == dict(per_day)
    for group in ("user", "key", "model"):
        found = sums(app, group, since=since)
        assert sum(s["cost_micros"] for s in found) == cost, group
        assert sum(s["requests"] for s in found) == sum(per_day.values()), group


def test_retention_leaves_the_daily_sums(app):
    account = make_account(app, email="d@example.com", balance_micros=100_000)
    settle_at(app, account, T0 - timedelta(days=40), "old")
    settle_at(app, account, T0, "new")
    with services(app).db.session_scope() as conn:
        while aggregates.prune_batch(conn, 30, T0, batch=10):
            pass
    assert daily(app) == [(T0 - timedelta(days=40), "mock:echo", 1, 10), (T0, "mock:echo", 1, 10)]
    assert [d["requests"] for d in sums(app, "day")] == [1, 1]


def test_a_teams_usage_by_member_spans_days_exactly(app):
    account = make_account(app, email="t@example.com", balance_micros=100_000)
    db = services(app).db
    with db.session_scope() as conn:
        team_id = teams.create_team(conn, "research", T0)
        teams.add_member(conn, team_id, account.user_id, "owner", T0)
        teams.credit_team(conn, team_id, 10**6, "for the test", T0)
        key_id, _minted = create_key(conn, account.user_id, team_id=team_id)
    team_key = Account(account.user_id, key_id, "")
    for i, minute in enumerate((30, 24 * 60 + 30, 2 * 24 * 60 + 90)):
        settle_at(app, team_key, T0 + timedelta(minutes=minute), f"t{i}", cost=100 * (i + 1), team_id=team_id)
    settle_at(app, account, T0 + timedelta(minutes=40), "own")  # the user's own key: not the team's
    with db.session_scope() as conn:
        everything = team_usage.usage_by_member(conn, team_id, T0 - timedelta(days=1))
        later = team_usage.usage_by_member(conn, team_id, T0 + timedelta(hours=5))
        # Inside the first hour: its raw rows before and after minute 30, then hours, then days.
        before_first = team_usage.usage_by_member(conn, team_id, T0 + timedelta(minutes=20))
        after_first = team_usage.usage_by_member(conn, team_id, T0 + timedelta(minutes=31))
    assert [(u.requests, u.cost_micros) for u in everything] == [(3, 600)]
    assert [(u.requests, u.cost_micros) for u in later] == [(2, 500)]
    assert [(u.requests, u.cost_micros) for u in before_first] == [(3, 600)]
    assert [(u.requests, u.cost_micros) for u in after_first] == [(2, 500)]

"""Periodic budgets and team balances in reserve, settle and sweep, on SQLite and PostgreSQL.

The clock is passed in: every moment below is a reservation's or settlement's `now`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from gateway.errors import BudgetExceededError, InsufficientQuotaError
from gateway.relay.spool import Spool
from gateway.store import billing, budgets, keys, teams, usage
from gateway.store.billing import Hold, UsageRecord
from gateway.store.database import Database
from gateway.store.periods import next_start
from gateway.store.tables import api_keys, holds, usage_hourly, usage_records, users
from gateway.store.users import create_user, list_users

BEFORE_MIDNIGHT = datetime(2026, 12, 2, 23, 59, 30, tzinfo=UTC)  # a Wednesday
AFTER_MIDNIGHT = datetime(2026, 12, 3, 0, 0, 30, tzinfo=UTC)
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Setup:
    db: Database
    user_id: int
    key_id: int
    team_id: int
    team_key_id: int


@pytest.fixture
def s(db_url):
    db = Database(db_url)
    db.create_schema()
    with db.session_scope() as conn:
        user_id = create_user(conn, "ann@example.com")
        conn.execute(update(users).where(users.c.id == user_id).values(balance_micros=100_000))
        key_id, _ = keys.create_key(conn, user_id)
        team_id = teams.create_team(conn, "research", NOON)
        teams.add_member(conn, team_id, user_id, "member", NOON)
        team_key_id, _ = keys.create_key(conn, user_id, team_id=team_id)
    yield Setup(db, user_id, key_id, team_id, team_key_id)
    db.dispose()


def hold(s: Setup, rid: str, amount: int, at: datetime, *, team: bool = False) -> Hold:
    key_id, team_id = (s.team_key_id, s.team_id) if team else (s.key_id, None)
    return Hold(rid, s.user_id, key_id, "priced:echo", amount, team_id=team_id, created_at=at)


def reserve(s: Setup, h: Hold, at: datetime) -> None:
    with s.db.session_scope() as conn:
        billing.reserve(conn, h, at)


def settle(s: Setup, h: Hold, cost: int, at: datetime) -> bool:
    with s.db.session_scope() as conn:
        return billing.settle(conn, h, UsageRecord(200, "ok", False, cost_micros=cost), at)


def budget(s: Setup, subject: str, micros: int | None, period: str | None) -> None:
    ids = {"user": s.user_id, "key": s.key_id, "team": s.team_id, "team_key": s.team_key_id}
    with s.db.session_scope() as conn:
        budgets.set_budget(conn, "key" if subject == "team_key" else subject, ids[subject], micros, period)


def key_spent(s: Setup, at: datetime, key_id: int | None = None) -> tuple[int, int]:
    """Return (spent this period, held this period) of a key as read at a moment."""
    with s.db.session_scope() as conn:
        record = keys.list_keys(conn, key_id=key_id or s.key_id, now=at)[0]
        held = conn.execute(select(api_keys.c.period_held_micros).where(api_keys.c.id == record.id)).scalar()
    return record.period_spent_micros, held


def test_a_day_budget_refuses_with_429_budget_exceeded_and_changes_nothing(s):
    budget(s, "key", 1000, "day")
    reserve(s, hold(s, "r1", 700, NOON), NOON)
    with pytest.raises(BudgetExceededError) as info:
        reserve(s, hold(s, "r2", 400, NOON), NOON)
    error = info.value
    assert (error.status, error.code) == (429, "budget_exceeded")
    assert "This API key's daily budget" in error.message and "2026-12-03T00:00:00Z" in error.message
    assert error.headers == {"retry-after": str(12 * 3600), "x-should-retry": "false"}
    with s.db.session_scope() as conn:
        user = conn.execute(select(users.c.held_micros).where(users.c.id == s.user_id)).scalar()
    assert user == 700  # the refused reservation left the user's hold as it was
    assert key_spent(s, NOON) == (0, 700)


def test_the_budget_resets_at_midnight_without_cron(s):
    budget(s, "key", 1000, "day")
    first = hold(s, "r1", 1000, NOON)
    reserve(s, first, NOON)
    settle(s, first, 900, NOON)
    assert key_spent(s, NOON) == (900, 0)
    with pytest.raises(BudgetExceededError):
        reserve(s, hold(s, "r2", 200, BEFORE_MIDNIGHT), BEFORE_MIDNIGHT)
    assert key_spent(s, AFTER_MIDNIGHT) == (0, 0)  # a read in the new day already shows zero
    reserve(s, hold(s, "r3", 1000, AFTER_MIDNIGHT), AFTER_MIDNIGHT)  # the whole budget again


def test_a_hold_made_before_midnight_and_settled_after_counts_in_its_own_day(s):
    budget(s, "key", 1000, "day")
    late = hold(s, "late", 800, BEFORE_MIDNIGHT)
    reserve(s, late, BEFORE_MIDNIGHT)
    # Held amounts of the old day still count until they settle: the budget is never passed.
    with pytest.raises(BudgetExceededError):
        reserve(s, hold(s, "early", 300, AFTER_MIDNIGHT), AFTER_MIDNIGHT)
    settle(s, late, 800, AFTER_MIDNIGHT)
    assert key_spent(s, AFTER_MIDNIGHT) == (0, 0)
    assert key_spent(s, BEFORE_MIDNIGHT) == (800, 0)  # yesterday's counter took it
    early = hold(s, "early", 300, AFTER_MIDNIGHT)
    reserve(s, early, AFTER_MIDNIGHT)
    settle(s, early, 300, AFTER_MIDNIGHT)
    assert key_spent(s, AFTER_MIDNIGHT) == (300, 0)


def test_an_old_hold_settled_after_the_new_day_began_counting_leaves_it_alone(s):
    budget(s, "key", 1000, "day")
    late = hold(s, "late", 400, BEFORE_MIDNIGHT)
    reserve(s, late, BEFORE_MIDNIGHT)
    early = hold(s, "early", 500, AFTER_MIDNIGHT)
    reserve(s, early, AFTER_MIDNIGHT)  # the key's counter now counts the new day
    settle(s, early, 500, AFTER_MIDNIGHT)
    settle(s, late, 400, AFTER_MIDNIGHT)
    assert key_spent(s, AFTER_MIDNIGHT) == (500, 0)


@pytest.mark.parametrize(
    ("period", "last", "first"),
    [
        ("week", datetime(2026, 11, 29, 23, 59, tzinfo=UTC), datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),
        ("month", datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_week_and_month_budgets_reset_at_monday_and_the_first(s, period, last, first):
    budget(s, "user", 1000, period)
    spend = hold(s, "r1", 1000, last - timedelta(days=1))
    reserve(s, spend, spend.created_at)
    settle(s, spend, 1000, spend.created_at)
    with pytest.raises(BudgetExceededError) as info:
        reserve(s, hold(s, "r2", 1, last), last)
    assert f"Your {period}ly budget" in info.value.message
    assert info.value.headers["retry-after"] == "60"
    reserve(s, hold(s, "r3", 1000, first), first)
    with s.db.session_scope() as conn:
        user = list_users(conn, user_id=s.user_id, now=first)[0]
    assert (user.period_spent_micros, user.period_resets_at) == (0, next_start(period, first))


def test_with_three_budgets_the_narrowest_refuses(s):
    budget(s, "team_key", 3000, "day")
    budget(s, "user", 2000, "week")
    budget(s, "team", 1000, "month")
    with s.db.session_scope() as conn:
        teams.credit_team(conn, s.team_id, 100_000, "", NOON)
    with pytest.raises(BudgetExceededError, match="The team's monthly budget"):
        reserve(s, hold(s, "r1", 1500, NOON, team=True), NOON)
    budget(s, "team", 5000, "month")
    with pytest.raises(BudgetExceededError, match="Your weekly budget"):
        reserve(s, hold(s, "r1", 2500, NOON, team=True), NOON)
    budget(s, "user", 5000, "week")
    with pytest.raises(BudgetExceededError, match="This API key's daily budget"):
        reserve(s, hold(s, "r1", 3500, NOON, team=True), NOON)
    reserve(s, hold(s, "r1", 2900, NOON, team=True), NOON)
    with s.db.session_scope() as conn:
        held = [
            conn.execute(select(t.c.period_held_micros).where(t.c.id == i)).scalar()
            for t, i in ((users, s.user_id), (teams.teams, s.team_id), (api_keys, s.team_key_id))
        ]
    assert held == [2900, 2900, 2900]  # the refusals before left nothing behind


def test_a_team_key_draws_on_the_team_balance_which_never_goes_negative(s):
    with s.db.session_scope() as conn:
        teams.credit_team(conn, s.team_id, 1000, "", NOON)
    first = hold(s, "r1", 600, NOON, team=True)
    reserve(s, first, NOON)
    with pytest.raises(InsufficientQuotaError, match="team's balance") as info:
        reserve(s, hold(s, "r2", 600, NOON, team=True), NOON)
    assert info.value.code == "insufficient_quota"
    assert settle(s, first, 600, NOON)
    reserve(s, second := hold(s, "r2", 400, NOON, team=True), NOON)
    assert settle(s, second, 400, NOON)
    with pytest.raises(InsufficientQuotaError):
        reserve(s, hold(s, "r3", 1, NOON, team=True), NOON)
    with s.db.session_scope() as conn:
        team = teams.get_team(conn, "research", NOON)
        user = conn.execute(select(users).where(users.c.id == s.user_id)).one()
        rows = conn.execute(select(usage_records.c.team_id)).scalars().all()
        hourly = conn.execute(select(usage_hourly.c.team_id, usage_hourly.c.cost_micros)).all()
    assert (team.balance_micros, team.held_micros) == (0, 0)
    assert (user.balance_micros, user.held_micros) == (100_000, 0)  # the member's own money is untouched
    assert rows == [s.team_id, s.team_id]
    assert [tuple(r) for r in hourly] == [(s.team_id, 1000)]


def test_sweep_releases_a_team_hold_from_the_team_and_the_budgets(s):
    budget(s, "team", 5000, "day")
    with s.db.session_scope() as conn:
        teams.credit_team(conn, s.team_id, 5000, "", NOON)
    reserve(s, hold(s, "dead", 2000, NOON, team=True), NOON)
    with s.db.session_scope() as conn:
        assert billing.sweep(conn, timedelta(minutes=5), NOON + timedelta(hours=1)) == 1
        team = conn.execute(select(teams.teams).where(teams.teams.c.id == s.team_id)).one()
        user = conn.execute(select(users).where(users.c.id == s.user_id)).one()
    assert (team.balance_micros, team.held_micros, team.period_held_micros) == (5000, 0, 0)
    assert (user.held_micros, user.period_held_micros) == (0, 0)


def test_a_settlement_spooled_before_teams_still_settles(s, tmp_path):
    """Spool files of the version before teams have no team_id or created_at: read from the hold."""
    with s.db.session_scope() as conn:
        teams.credit_team(conn, s.team_id, 5000, "", NOON)
    team_hold = hold(s, "spooled", 1000, NOON, team=True)
    reserve(s, team_hold, NOON)
    spool = Spool(str(tmp_path / "spool"))
    spool.put(team_hold, UsageRecord(200, "ok", False, cost_micros=300), NOON)
    [path] = list((tmp_path / "spool").iterdir())
    data = json.loads(path.read_text())
    assert data["hold"]["created_at"] == NOON.isoformat()
    del data["hold"]["team_id"], data["hold"]["created_at"]
    path.write_text(json.dumps(data))
    [entry] = spool.pending()
    assert entry.hold.team_id is None and entry.hold.created_at is None
    with s.db.session_scope() as conn:
        assert billing.settle(conn, entry.hold, entry.record, entry.settled_at)
        team = conn.execute(select(teams.teams).where(teams.teams.c.id == s.team_id)).one()
        assert conn.execute(select(holds)).first() is None
    assert (team.balance_micros, team.held_micros) == (4700, 0)


def test_usage_sums_per_team_count_team_keys_only(s):
    with s.db.session_scope() as conn:
        teams.credit_team(conn, s.team_id, 10_000, "", NOON)
    for rid, team, cost in (("t1", True, 300), ("t2", True, 200), ("own", False, 999)):
        h = hold(s, rid, 1000, NOON, team=team)
        reserve(s, h, NOON)
        settle(s, h, cost, NOON + timedelta(minutes=10))
    with s.db.session_scope() as conn:
        sums = usage.summarize(conn, "team")
        partial = usage.summarize(conn, "team", since=NOON + timedelta(minutes=5))
    assert [r.to_json() for r in sums] == [
        {
            "team_id": s.team_id,
            "team": "research",
            "requests": 2,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
            "cost_micros": 500,
        }
    ]
    assert [(r.team, r.requests, r.cost_micros) for r in partial] == [("research", 2, 500)]  # raw rows too


def test_concurrent_reservations_of_two_members_never_pass_the_team_budget(s):
    """Threads on one pool: each reservation is one statement (PostgreSQL) or one writer (SQLite)."""
    budget(s, "team", 1000, "day")
    with s.db.session_scope() as conn:
        teams.credit_team(conn, s.team_id, 1_000_000, "", NOON)
        bob = create_user(conn, "bob@example.com")
        teams.add_member(conn, s.team_id, bob, "member", NOON)
        bob_key, _ = keys.create_key(conn, bob, team_id=s.team_id)
    holds_made = [
        Hold(
            f"r{i}",
            *((s.user_id, s.team_key_id) if i % 2 else (bob, bob_key)),
            "priced:echo",
            100,
            team_id=s.team_id,
            created_at=NOON,
        )
        for i in range(24)
    ]

    def attempt(h: Hold) -> bool:
        try:
            reserve(s, h, NOON)
        except BudgetExceededError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        accepted = sum(pool.map(attempt, holds_made))
    with s.db.session_scope() as conn:
        team = conn.execute(select(teams.teams).where(teams.teams.c.id == s.team_id)).one()
    assert accepted == 10
    assert (team.held_micros, team.period_held_micros) == (1000, 1000)

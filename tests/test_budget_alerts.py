"""Budget alerts against a loopback webhook receiver, on SQLite and PostgreSQL, with an injected clock.

Spend goes through the real reserve and settle, so the alerts read the counters billing writes.
Each tick is called by hand; the senders' threads are not started.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy import select, update

from gateway.observability.alerts import MAX_ATTEMPTS, AlertSender
from gateway.store import billing, budgets, keys, teams
from gateway.store.billing import Hold, UsageRecord
from gateway.store.database import Database
from gateway.store.tables import api_keys, budget_alerts, users
from gateway.store.users import create_user
from tests.fakes.loopback import Exchange, Handler, LoopbackServer
from tests.support.app import FixedClock

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # a Wednesday
NEXT_NOON = NOON + timedelta(days=1)
RIDS = count()


class Receiver(LoopbackServer):
    """A webhook that answers the statuses it is given, then 200 for good."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.statuses = list(statuses)

    def handle(self, handler: Handler, ex: Exchange) -> None:
        status = self.statuses.pop(0) if self.statuses else 200
        handler.send_json(status, {"ok": status == 200})

    def bodies(self, kind: str | None = None) -> list[dict]:
        return [ex.body for ex in self.exchanges if kind is None or ex.body["kind"] == kind]


@dataclass
class Setup:
    db: Database
    clock: FixedClock
    user_id: int
    key_id: int
    team_id: int


@pytest.fixture
def s(db_url):
    db = Database(db_url)
    db.create_schema()
    with db.session_scope() as conn:
        user_id = create_user(conn, "ann@example.com")
        conn.execute(update(users).where(users.c.id == user_id).values(balance_micros=100_000_000))
        key_id, _ = keys.create_key(conn, user_id, name="ci")
        team_id = teams.create_team(conn, "research", NOON)
        teams.add_member(conn, team_id, user_id, "member", NOON)
        teams.credit_team(conn, team_id, 100_000_000, "test", NOON)
    yield Setup(db, FixedClock(NOON), user_id, key_id, team_id)
    db.dispose()


def sender(s: Setup, receiver: Receiver, db: Database | None = None) -> AlertSender:
    return AlertSender(db or s.db, s.clock, receiver.url + "/hook", 0.8, interval=5, timeout=2)


def spend(s: Setup, cost: int, *, team_id: int | None = None) -> None:
    """Reserve and settle one request of this cost at the clock's time (worst case = cost)."""
    at = s.clock.now()
    hold = Hold(f"r{next(RIDS)}", s.user_id, s.key_id, "priced:echo", cost, team_id=team_id, created_at=at)
    with s.db.session_scope() as conn:
        billing.reserve(conn, hold, at)
    with s.db.session_scope() as conn:
        assert billing.settle(conn, hold, UsageRecord(200, "ok", False, cost_micros=cost), at)


def budget(s: Setup, subject: str, subject_id: int, micros: int, period: str = "day") -> None:
    with s.db.session_scope() as conn:
        budgets.set_budget(conn, subject, subject_id, micros, period)


def test_one_post_per_threshold_and_per_kind_and_nothing_under_the_threshold(s):
    budget(s, "key", s.key_id, 1000)
    with Receiver() as receiver:
        alerts = sender(s, receiver)
        spend(s, 790)
        assert alerts.tick() == 0 and receiver.exchanges == []  # 79 %: under the threshold
        spend(s, 10)  # 80 % exactly
        assert alerts.tick() == 1
        assert alerts.tick() == 0
        spend(s, 150)
        assert alerts.tick() == 0  # 95 %: already told
        spend(s, 50)  # 100 %
        assert alerts.tick() == 1
        alerts.tick()
    assert [b["kind"] for b in receiver.bodies()] == ["threshold", "exhausted"]
    first = receiver.bodies("threshold")[0]
    with s.db.session_scope() as conn:
        key = conn.execute(
            select(api_keys.c.prefix, api_keys.c.key_hash).where(api_keys.c.id == s.key_id)
        ).one()
    assert first["subject"] == f"key:{s.key_id}" and first["subject_kind"] == "key"
    assert first["subject_id"] == s.key_id and first["name"] == "ci" and first["prefix"] == key.prefix
    assert (first["period"], first["budget_micros"], first["spent_micros"]) == ("day", 1000, 800)
    assert (first["period_start"], first["resets_at"]) == ("2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z")
    assert "API key 'ci'" in first["text"] and "daily budget of $0.001" in first["text"]
    assert "80%" in first["text"] and "2026-12-03T00:00:00Z" in first["text"]
    assert key.key_hash not in str(receiver.exchanges[0].raw)
    assert receiver.exchanges[0].path == "/hook"
    assert receiver.bodies("exhausted")[0]["text"].startswith("Budget exhausted: API key 'ci'")


def test_a_new_period_alerts_again_for_users_and_teams(s):
    budget(s, "user", s.user_id, 2_000_000)
    budget(s, "team", s.team_id, 1_700_000, "week")
    with Receiver() as receiver:
        alerts = sender(s, receiver)
        spend(s, 1_700_000, team_id=s.team_id)  # the user at 85 % of a day, the team's week used up
        alerts.tick()
        subjects = sorted((b["subject"], b["kind"]) for b in receiver.bodies())
        assert subjects == [
            (f"team:{s.team_id}", "exhausted"),
            (f"team:{s.team_id}", "threshold"),
            (f"user:{s.user_id}", "threshold"),
        ]
        user_alert = next(b for b in receiver.bodies() if b["subject_kind"] == "user")
        assert user_alert["email"] == "ann@example.com" and "User 'ann@example.com'" in user_alert["text"]
        team_alert = next(b for b in receiver.bodies() if b["subject_kind"] == "team")
        assert team_alert["name"] == "research" and team_alert["resets_at"] == "2026-12-07T00:00:00Z"
        s.clock.wall = NEXT_NOON  # a new day: the user starts at zero; the team's week goes on
        alerts.tick()
        assert len(receiver.exchanges) == 3
        spend(s, 1_700_000)  # a personal key this time: the team is not charged
        alerts.tick()
    assert len(receiver.exchanges) == 4
    again = receiver.bodies()[3]
    assert (again["subject"], again["kind"]) == (f"user:{s.user_id}", "threshold")
    assert again["period_start"] == "2026-12-03T00:00:00Z"


def test_a_failing_receiver_is_retried_with_backoff_and_then_served_once(s):
    budget(s, "key", s.key_id, 1000)
    spend(s, 900)
    with Receiver(statuses=(500, 500)) as receiver:
        alerts = sender(s, receiver)
        assert alerts.tick() == 0  # the first try: 500
        assert alerts.tick() == 0 and len(receiver.exchanges) == 1  # not due yet
        s.clock.wall += timedelta(seconds=alerts.backoff)
        assert alerts.tick() == 0 and len(receiver.exchanges) == 2  # the second try: 500
        s.clock.wall += timedelta(seconds=2 * alerts.backoff)
        assert alerts.tick() == 1  # the third: delivered
        s.clock.wall += timedelta(hours=1)
        assert alerts.tick() == 0
    assert len(receiver.exchanges) == 3
    assert all(ex.body == receiver.exchanges[0].body for ex in receiver.exchanges)
    with s.db.session_scope() as conn:
        row = conn.execute(select(budget_alerts)).one()
    assert row.attempts == 3 and row.sent_at is not None


def test_a_receiver_that_never_answers_2xx_is_given_up_after_the_last_try(s):
    budget(s, "key", s.key_id, 1000)
    spend(s, 900)
    with Receiver(statuses=(503,) * 50) as receiver:
        alerts = sender(s, receiver)
        for _ in range(20):
            alerts.tick()
            s.clock.wall += timedelta(hours=1)
    assert len(receiver.exchanges) == MAX_ATTEMPTS


def test_two_senders_on_one_database_send_each_alert_once(s, db_url):
    budget(s, "key", s.key_id, 1000)
    budget(s, "user", s.user_id, 1000)
    spend(s, 1000)  # four alerts: threshold and exhausted, for the key and the user
    other = Database(db_url)
    try:
        with Receiver() as receiver:
            senders = [sender(s, receiver), sender(s, receiver, other)]
            start = threading.Barrier(len(senders))
            errors: list[BaseException] = []

            def run(alerts: AlertSender) -> None:
                try:
                    start.wait()
                    for _ in range(5):
                        alerts.tick()
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(a,)) for a in senders]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
    finally:
        other.dispose()
    assert errors == []
    sent = sorted((b["subject"], b["kind"]) for b in receiver.bodies())
    assert sent == sorted(
        (subject, kind)
        for subject in (f"key:{s.key_id}", f"user:{s.user_id}")
        for kind in ("exhausted", "threshold")
    )

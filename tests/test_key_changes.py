"""A change to a key reaches every process's key cache within half a second, on SQLite and PostgreSQL.

Two apps on one store stand for two workers (or two hosts); their clocks' monotonic time is stepped
by hand, so no test waits. tests/test_key_changes_live.py does the same with gunicorn workers.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from gateway.store import keys, ratelimit
from tests.support.app import PRICED, assert_envelope, chat, make_account, services


class SteppedClock:
    """Real wall time; monotonic time that moves only when the test says so."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.start = time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return self.start + self.offset


def call(app, account, model: str = "priced:echo"):
    return app.test_client().post("/api/v1/chat/completions", json=chat(model), headers=account.headers)


def two_workers(make_app):
    clock = SteppedClock()
    first = make_app(clock=clock, providers=PRICED, key_cache_ttl=60.0)
    second = make_app(clock=clock, providers=PRICED, key_cache_ttl=60.0)
    return clock, first, second


def test_revoke_disable_and_expiry_in_one_process_reach_the_other_within_half_a_second(make_app):
    clock, first, second = two_workers(make_app)
    accounts = [make_account(first, email=f"u{n}@example.com", unlimited=True) for n in range(3)]
    for account in accounts:
        assert call(second, account).status_code == 200  # now cached by the second for a minute
    with services(first).db.session_scope() as conn:
        keys.revoke_key(conn, str(accounts[0].key_id))
        keys.update_key(conn, accounts[1].key_id, disabled=True)
        keys.update_key(conn, accounts[2].key_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    clock.offset += 0.5
    for account in accounts:
        assert_envelope(call(second, account), 401, "invalid_api_key")


def test_limit_and_model_changes_reach_the_other_process(make_app):
    clock, first, second = two_workers(make_app)
    account = make_account(first, email="ada@example.com", unlimited=True)
    assert call(second, account).status_code == 200
    with services(first).db.session_scope() as conn:
        keys.update_key(conn, account.key_id, allowed_models=["mock:echo"])
    clock.offset += 0.5
    assert_envelope(call(second, account), 403, "model_not_allowed", "model")
    with services(first).db.session_scope() as conn:
        ratelimit.set_limits(conn, "key", account.key_id, rpm_limit=1)
    clock.offset += 0.5
    assert call(second, account, "mock:echo").status_code == 200
    assert call(second, account, "mock:echo").status_code == 429


def test_a_cached_key_costs_no_query_between_checks(make_app):
    clock, first, second = two_workers(make_app)
    account = make_account(first, email="ada@example.com", unlimited=True)
    assert call(second, account, "mock:echo").status_code == 200
    statements: list[str] = []
    engine = services(second).db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        for _ in range(5):
            clock.offset += 0.05
            assert call(second, account, "mock:echo").status_code == 200
        assert not any("access_changes" in s or "api_keys.key_hash" in s for s in statements)
        clock.offset += 0.5
        assert call(second, account, "mock:echo").status_code == 200
        assert sum("access_changes" in s for s in statements) == 1
    finally:
        event.remove(engine, "before_cursor_execute", listener)

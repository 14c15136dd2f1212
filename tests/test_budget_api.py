"""Over a budget, every surface answers 429 budget_exceeded, final, with when to come back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.store import budgets, keys, teams
from tests.support.app import PRICED, FixedClock, assert_envelope, chat, make_account, services

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
TO_MIDNIGHT = str(12 * 3600)


@pytest.fixture
def app(make_app):
    return make_app(clock=FixedClock(NOON), providers=PRICED)


@pytest.fixture
def capped(app):
    """A rich user whose key has a daily budget smaller than one request's worst case."""
    acct = make_account(app, email="capped@example.com", balance_micros=10_000_000)
    with services(app).db.session_scope() as conn:
        budgets.set_budget(conn, "key", acct.key_id, 1, "day")
    return acct


def test_chat_completions_answers_429_budget_exceeded_with_retry_after(app, capped):
    resp = app.test_client().post(
        "/api/v1/chat/completions", json=chat("priced:echo"), headers=capped.headers
    )
    body = assert_envelope(resp, 429, "budget_exceeded")
    assert body["error"]["type"] == "insufficient_quota"
    assert "This API key's daily budget" in body["error"]["message"]
    assert "2026-12-03T00:00:00Z" in body["error"]["message"]
    assert resp.headers["retry-after"] == TO_MIDNIGHT
    assert resp.headers["x-should-retry"] == "false"


def test_messages_answers_the_same_429_in_anthropics_envelope(app, capped):
    body = {"model": "priced:echo", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]}
    headers = {"x-api-key": capped.secret, "anthropic-version": "2023-06-01"}
    resp = app.test_client().post("/api/v1/messages", json=body, headers=headers)
    assert resp.status_code == 429, resp.get_data(as_text=True)
    error = resp.get_json()
    assert error["type"] == "error" and error["error"]["type"] == "billing_error"
    assert "daily budget" in error["error"]["message"]
    assert resp.headers["retry-after"] == TO_MIDNIGHT
    assert resp.headers["x-should-retry"] == "false"


def test_responses_answers_429_budget_exceeded(app, capped):
    resp = app.test_client().post(
        "/api/v1/responses", json={"model": "priced:echo", "input": "Hi"}, headers=capped.headers
    )
    body = assert_envelope(resp, 429, "budget_exceeded")
    assert "daily budget" in body["error"]["message"]
    assert resp.headers["retry-after"] == TO_MIDNIGHT
    assert resp.headers["x-should-retry"] == "false"


def test_a_team_key_pays_from_the_team_and_stops_when_its_user_leaves(app):
    acct = make_account(app, email="member@example.com", balance_micros=0)
    db = services(app).db
    with db.session_scope() as conn:
        team_id = teams.create_team(conn, "research", NOON)
        teams.add_member(conn, team_id, acct.user_id, "member", NOON)
        teams.credit_team(conn, team_id, 1_000_000, "", NOON)
        _, minted = keys.create_key(conn, acct.user_id, team_id=team_id)
    headers = {"Authorization": f"Bearer {minted.secret}"}
    client = app.test_client()
    resp = client.post("/api/v1/chat/completions", json=chat("priced:echo"), headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    with db.session_scope() as conn:
        team = teams.get_team(conn, "research", NOON)
        teams.remove_member(conn, team_id, acct.user_id)
    assert 0 < 1_000_000 - team.balance_micros and team.held_micros == 0
    resp = client.post("/api/v1/chat/completions", json=chat("priced:echo"), headers=headers)
    assert_envelope(resp, 401, "invalid_api_key")

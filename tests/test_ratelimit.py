"""Rate limits per key and per user on SQLite and PostgreSQL: requests, tokens and concurrency per minute.

The upstream is `responses`, so every test can count the calls that reached it; a refused request
must make none, move no money and write no usage row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
from sqlalchemy import func, select

from gateway.errors import RateLimitError
from gateway.relay.hold import FRAMING_TOKENS, MESSAGE_TOKENS
from gateway.store import billing, ratelimit
from gateway.store.billing import Hold
from gateway.store.keys import create_key
from gateway.store.ratelimit import Limit
from gateway.store.tables import api_keys, holds, rate_limit_windows, usage_records, users
from tests.support.app import FixedClock, chat, make_account, services

URL = "http://upstream.test/v1/chat/completions"
PROVIDERS = {
    "up": {
        "type": "openai",
        "base_url": "http://upstream.test/v1",
        "api_key": "sk-upstream-secret-123",
        "models": {"m": {"input_price": 1, "output_price": 2}},
    }
}
ANSWER = {
    "id": "chatcmpl-9",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
NOW = datetime(2026, 11, 26, 12, 0, 15, tzinfo=UTC)  # 45 s before the window resets
BODY = json.dumps(chat(model="up:m", max_tokens=10)).encode()
# The reservation's worst case: a byte of body per prompt token and the framing, plus max_tokens.
TOKENS = len(BODY) + FRAMING_TOKENS + MESSAGE_TOKENS + 10


@pytest.fixture
def app(make_app):
    return make_app(providers=PROVIDERS, clock=FixedClock(NOW))  # time only: the minute window


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, URL, json=ANSWER)
        yield mock


def post(client, acct, body: bytes = BODY):
    return client.post(
        "/api/v1/chat/completions", data=body, content_type="application/json", headers=acct.headers
    )


def set_limits(app, kind: str, subject_id: int, **values) -> None:
    with services(app).db.session_scope() as conn:
        ratelimit.set_limits(conn, kind, subject_id, **values)


def state(app, acct) -> tuple[int, int, int, int]:
    """Return (usage rows, open holds, user balance, key spent)."""
    with services(app).db.session_scope() as conn:
        rows = conn.execute(select(func.count()).select_from(usage_records)).scalar_one()
        left = conn.execute(select(func.count()).select_from(holds)).scalar_one()
        balance = conn.execute(select(users.c.balance_micros).where(users.c.id == acct.user_id)).scalar_one()
        spent = conn.execute(select(api_keys.c.spent_micros).where(api_keys.c.id == acct.key_id)).scalar_one()
    return rows, left, balance, spent


def rate_limit_error(resp, kind: str) -> dict:
    assert resp.status_code == 429, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["error"]["type"] == kind
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert body["request_id"] == resp.headers["X-Request-Id"]
    return body["error"]


def test_key_rpm_refuses_the_next_request_with_openai_headers(app, upstream):
    acct = make_account(app, email="a@example.com", balance_micros=10**6)
    set_limits(app, "key", acct.key_id, rpm_limit=2)
    client = app.test_client()
    assert [post(client, acct).status_code for _ in range(2)] == [200, 200]
    before = state(app, acct)
    resp = post(client, acct)
    rate_limit_error(resp, "requests")
    assert resp.headers["retry-after"] == "45"
    assert resp.headers["x-ratelimit-limit-requests"] == "2"
    assert resp.headers["x-ratelimit-remaining-requests"] == "0"
    assert resp.headers["x-ratelimit-reset-requests"] == "45s"
    assert "x-ratelimit-limit-tokens" not in resp.headers
    assert "x-should-retry" not in resp.headers  # waiting helps: the SDKs may retry it
    assert len(upstream.calls) == 2
    assert state(app, acct) == before and before[:2] == (2, 0)


def test_user_tpm_is_shared_by_the_users_keys(app, upstream):
    acct = make_account(app, email="a@example.com", balance_micros=10**6)
    with services(app).db.session_scope() as conn:
        other_key, minted = create_key(conn, acct.user_id)
    other = type(acct)(acct.user_id, other_key, minted.secret)
    set_limits(app, "user", acct.user_id, tpm_limit=2 * TOKENS + TOKENS // 2)
    client = app.test_client()
    assert post(client, acct).status_code == 200
    assert post(client, other).status_code == 200
    before = state(app, acct)
    resp = post(client, other)
    error = rate_limit_error(resp, "tokens")
    assert "tokens per minute" in error["message"]
    assert resp.headers["x-ratelimit-limit-tokens"] == str(2 * TOKENS + TOKENS // 2)
    assert resp.headers["x-ratelimit-remaining-tokens"] == str(TOKENS // 2)
    assert resp.headers["x-ratelimit-reset-tokens"] == "45s"
    assert len(upstream.calls) == 2
    assert state(app, acct) == before


def test_request_larger_than_the_tpm_is_refused_and_not_retried(app, upstream):
    acct = make_account(app, email="a@example.com", balance_micros=10**6)
    set_limits(app, "key", acct.key_id, tpm_limit=TOKENS - 1)
    resp = post(app.test_client(), acct)
    error = rate_limit_error(resp, "tokens")
    assert "lower max_tokens" in error["message"]
    assert resp.headers["x-should-retry"] == "false"
    assert len(upstream.calls) == 0
    assert state(app, acct) == (0, 0, 10**6, 0)


def test_requests_without_limits_do_no_rate_limit_work(app, upstream):
    acct = make_account(app, email="a@example.com", balance_micros=10**6)
    client = app.test_client()
    assert [post(client, acct).status_code for _ in range(3)] == [200] * 3
    with services(app).db.session_scope() as conn:
        assert conn.execute(select(func.count()).select_from(rate_limit_windows)).scalar_one() == 0


def test_window_resets_at_the_next_minute(app):
    acct = make_account(app, email="a@example.com")
    limits = (Limit("key", acct.key_id, rpm=1, tpm=100),)
    start = datetime(2026, 11, 26, 12, 0, 10, tzinfo=UTC)

    def admit(now: datetime, tokens: int = 10) -> None:
        with services(app).db.session_scope() as conn:
            ratelimit.admit(conn, limits, tokens, now)

    admit(start)
    with pytest.raises(RateLimitError) as info:
        admit(start + timedelta(seconds=49))
    assert info.value.headers["retry-after"] == "1"
    admit(start + timedelta(seconds=50))  # 12:01:00, a new window
    with pytest.raises(RateLimitError):
        admit(start + timedelta(seconds=51))
    # A host whose clock lags a little counts into the newer window instead of resetting it.
    with pytest.raises(RateLimitError):
        admit(start)
    admit(start + timedelta(minutes=5), tokens=100)


def test_concurrency_counts_open_holds_and_the_sweep_releases_a_dead_workers(app):
    acct = make_account(app, email="a@example.com", balance_micros=10**6)
    limits = (Limit("key", acct.key_id, concurrency=1),)
    with services(app).db.session_scope() as conn:  # a worker that reserved, then died
        ratelimit.admit(conn, limits, 10, NOW)
        billing.reserve(conn, Hold("dead-1", acct.user_id, acct.key_id, "up:m", 100), NOW)
    with pytest.raises(RateLimitError, match="concurrent") as info:
        with services(app).db.session_scope() as conn:
            ratelimit.admit(conn, limits, 10, NOW)
    assert info.value.type == "requests" and info.value.headers["retry-after"] == "1"
    with services(app).db.session_scope() as conn:
        assert billing.sweep(conn, timedelta(minutes=1), NOW + timedelta(minutes=2)) == 1
    with services(app).db.session_scope() as conn:
        ratelimit.admit(conn, limits, 10, NOW)


def test_concurrency_is_released_after_an_upstream_error(app):
    acct = make_account(app, email="a@example.com", balance_micros=10**6)
    set_limits(app, "key", acct.key_id, max_concurrent=1)
    client = app.test_client()
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, URL, status=500, json={"error": {"message": "boom", "type": "server_error"}})
        assert post(client, acct).status_code == 500
        mock.add(responses.POST, URL, json=ANSWER)
        assert post(client, acct).status_code == 200
        assert len(mock.calls) == 2
    assert state(app, acct)[:2] == (2, 0)


def test_concurrency_is_released_when_a_stream_client_disconnects(make_app):
    app = make_app(clock=FixedClock(NOW))
    acct = make_account(app, email="a@example.com", balance_micros=10**6)
    set_limits(app, "key", acct.key_id, max_concurrent=1)
    client = app.test_client()
    stream = json.dumps(chat(content="one two three four", stream=True)).encode()
    first = post(client, acct, stream)  # the test client has not read the body yet: still in flight
    assert first.status_code == 200
    second = post(client, acct, stream)
    assert "at most 1 at a time" in rate_limit_error(second, "requests")["message"]
    first.close()  # the client goes away: the relay settles as client_disconnected
    with services(app).db.session_scope() as conn:
        outcomes = conn.execute(select(usage_records.c.outcome)).scalars().all()
    assert outcomes == ["client_disconnected"]
    third = post(client, acct, stream)
    assert third.status_code == 200 and b"data: [DONE]" in third.get_data()


def test_set_limits_refuses_nonsense_and_unknown_subjects(app):
    acct = make_account(app, email="a@example.com")
    with services(app).db.session_scope() as conn:
        with pytest.raises(ValueError, match="positive"):
            ratelimit.set_limits(conn, "key", acct.key_id, rpm_limit=0)
        with pytest.raises(ValueError, match="unknown"):
            ratelimit.set_limits(conn, "key", acct.key_id, rpm=5)
    with pytest.raises(Exception, match="no user"):
        with services(app).db.session_scope() as conn:
            ratelimit.set_limits(conn, "user", 999_999, rpm_limit=5)


def test_admin_api_sets_and_clears_key_and_user_limits(make_app, upstream):
    token = "admin-token-for-tests-0123456789"
    app = make_app(providers=PROVIDERS, admin_token=token)
    acct = make_account(app, email="a@example.com", balance_micros=10**6)
    client = app.test_client()

    def patch(path: str, body: dict):
        return client.patch("/api/admin" + path, json=body, headers={"Authorization": f"Bearer {token}"})

    resp = patch(f"/keys/{acct.key_id}", {"rpm_limit": 1, "max_concurrent": 4})
    assert resp.status_code == 200
    assert (resp.get_json()["rpm_limit"], resp.get_json()["max_concurrent"]) == (1, 4)
    assert post(client, acct).status_code == 200
    rate_limit_error(post(client, acct), "requests")
    assert patch(f"/keys/{acct.key_id}", {"rpm_limit": None}).get_json()["rpm_limit"] is None
    assert post(client, acct).status_code == 200
    resp = patch(f"/users/{acct.user_id}", {"tpm_limit": TOKENS - 1})
    assert resp.status_code == 200 and resp.get_json()["tpm_limit"] == TOKENS - 1
    rate_limit_error(post(client, acct), "tokens")
    assert patch(f"/users/{acct.user_id}", {"rpm_limit": 0}).status_code == 400
    assert patch(f"/users/{acct.user_id}", {"rpm": 5}).status_code == 400
    assert patch("/users/999999", {"rpm_limit": 5}).status_code == 404
    assert len(upstream.calls) == 2


def test_cli_sets_key_and_user_limits(make_app, monkeypatch, db_url, tmp_path):
    from click.testing import CliRunner

    from gateway.cli import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("GATEWAY_DATABASE_URL", raising=False)
    app = make_app()
    acct = make_account(app, email="a@example.com")
    runner = CliRunner()

    def run(*args: str, status: int = 0):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == status, result.output
        return result

    run("keys", "create", "--user", "a@example.com", "--name", "new", "--rpm", "7", "--concurrency", "2")
    run("keys", "limits", str(acct.key_id), "--tpm", "900")
    run("users", "limits", "a@example.com", "--rpm", "50", "--concurrency", "5")
    run("users", "limits", "a@example.com", "--concurrency", "none")
    assert "positive whole number" in run("keys", "limits", str(acct.key_id), "--rpm", "0", status=2).output
    assert "no key with id 999999" in run("keys", "limits", "999999", "--rpm", "3", status=1).output
    keys = {k["name"]: k for k in json.loads(run("keys", "list", "--json").output)}
    assert (keys["new"]["rpm_limit"], keys["new"]["tpm_limit"], keys["new"]["max_concurrent"]) == (7, None, 2)
    assert (keys[""]["rpm_limit"], keys[""]["tpm_limit"]) == (None, 900)
    with services(app).db.session_scope() as conn:
        user = conn.execute(select(users).where(users.c.id == acct.user_id)).one()
    assert (user.rpm_limit, user.tpm_limit, user.max_concurrent) == (50, None, None)

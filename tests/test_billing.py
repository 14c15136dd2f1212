"""The money rules on SQLite and PostgreSQL: holds, settlement, sweep, insufficient_quota."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from gateway import errors
from gateway.errors import InsufficientQuotaError
from gateway.relay.hold import FRAMING_TOKENS, MESSAGE_TOKENS
from gateway.store import billing
from gateway.store.billing import Hold, UsageRecord
from gateway.store.tables import api_keys, holds, usage_records, users
from tests.support.app import chat, make_account, services

PRICED = {
    "priced": {
        "type": "mock",
        "models": {
            "echo": {"input_price": 1.0, "output_price": 2.0, "cached_input_price": 0.5},
        },
    }
}
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def balances(app, acct) -> tuple[int, int, int, int]:
    """Return (user balance, user held, key spent, key held)."""
    with services(app).db.session_scope() as conn:
        user = conn.execute(select(users).where(users.c.id == acct.user_id)).one()
        key = conn.execute(select(api_keys).where(api_keys.c.id == acct.key_id)).one()
    return user.balance_micros, user.held_micros, key.spent_micros, key.held_micros


def count(app, table) -> int:
    with services(app).db.session_scope() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def hold_for(acct, request_id: str = "req-1", amount: int = 1000) -> Hold:
    return Hold(request_id, acct.user_id, acct.key_id, "priced:echo", amount)


def test_reserve_holds_amount_on_user_and_key(app):
    acct = make_account(app, email="a@example.com", balance_micros=5000)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold_for(acct), NOW)
    assert balances(app, acct) == (5000, 1000, 0, 1000)
    assert count(app, holds) == 1


def test_reserve_refuses_more_than_available_and_changes_nothing(app):
    acct = make_account(app, email="a@example.com", balance_micros=1500)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold_for(acct, "r1"), NOW)
    with pytest.raises(InsufficientQuotaError) as info:
        with services(app).db.session_scope() as conn:
            billing.reserve(conn, hold_for(acct, "r2"), NOW)
    assert info.value.headers["x-should-retry"] == "false"
    assert balances(app, acct) == (1500, 1000, 0, 1000)
    assert count(app, holds) == 1


def test_key_limit_refusal_rolls_back_the_user_hold(app):
    acct = make_account(app, email="a@example.com", balance_micros=10_000, limit_micros=500)
    with pytest.raises(InsufficientQuotaError, match="spend limit"):
        with services(app).db.session_scope() as conn:
            billing.reserve(conn, hold_for(acct), NOW)
    assert balances(app, acct) == (10_000, 0, 0, 0)


def test_settle_charges_real_cost_and_releases_hold(app):
    acct = make_account(app, email="a@example.com", balance_micros=5000)
    hold = hold_for(acct)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold, NOW)
    record = UsageRecord(status=200, outcome="ok", stream=False, prompt_tokens=10, cost_micros=321)
    with services(app).db.session_scope() as conn:
        assert billing.settle(conn, hold, record, NOW) is True
    assert balances(app, acct) == (5000 - 321, 0, 321, 0)
    assert count(app, holds) == 0
    assert count(app, usage_records) == 1


def test_settle_twice_writes_one_row_and_charges_once(app):
    acct = make_account(app, email="a@example.com", balance_micros=5000)
    hold = hold_for(acct)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold, NOW)
    record = UsageRecord(status=200, outcome="ok", stream=False, cost_micros=100)
    for expected in (True, False):
        with services(app).db.session_scope() as conn:
            assert billing.settle(conn, hold, record, NOW) is expected
    assert balances(app, acct) == (4900, 0, 100, 0)
    assert count(app, usage_records) == 1


def test_sweep_releases_stale_holds_only(app):
    acct = make_account(app, email="a@example.com", balance_micros=5000)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold_for(acct, "old"), NOW - timedelta(hours=2))
        billing.reserve(conn, hold_for(acct, "new"), NOW)
    with services(app).db.session_scope() as conn:
        assert billing.sweep(conn, timedelta(hours=1), NOW) == 1
    assert balances(app, acct) == (5000, 1000, 0, 1000)
    with services(app).db.session_scope() as conn:
        row = conn.execute(select(usage_records)).one()
    assert (row.request_id, row.outcome, row.cost_micros, row.estimated) == ("old", "abandoned", 0, True)


def test_unlimited_user_is_not_debited_but_key_spend_is_counted(app):
    acct = make_account(app)  # the local unlimited user, balance 0
    hold = hold_for(acct, amount=10**12)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold, NOW)
        billing.settle(conn, hold, UsageRecord(status=200, outcome="ok", stream=False, cost_micros=7), NOW)
    assert balances(app, acct) == (0, 0, 7, 0)


def test_api_refuses_with_429_insufficient_quota_and_no_upstream_call(make_app):
    app = make_app(providers=PRICED)
    acct = make_account(app, email="poor@example.com", balance_micros=10)
    resp = app.test_client().post("/api/v1/chat/completions", json=chat("priced:echo"), headers=acct.headers)
    assert resp.status_code == 429
    assert resp.headers["x-should-retry"] == "false"
    body = resp.get_json()
    assert body["error"]["type"] == "insufficient_quota" and body["error"]["code"] == "insufficient_quota"
    assert count(app, usage_records) == 0 and count(app, holds) == 0
    assert balances(app, acct) == (10, 0, 0, 0)


def test_api_refusal_by_a_later_subject_leaves_no_hold_on_an_earlier_one(make_app):
    # The user's hold is taken before the key's limit and the team's budget are checked, in one
    # statement on PostgreSQL: a refusal must undo it, so that statement must never run alone.
    app = make_app(providers=PRICED)
    acct = make_account(app, email="capped@example.com", balance_micros=1_000_000, limit_micros=10)
    for _ in range(3):
        resp = app.test_client().post(
            "/api/v1/chat/completions", json=chat("priced:echo"), headers=acct.headers
        )
        assert resp.status_code == 429
        assert "spend limit" in resp.get_json()["error"]["message"]
    assert balances(app, acct) == (1_000_000, 0, 0, 0)
    assert count(app, holds) == 0


def test_api_bills_from_upstream_usage(make_app):
    app = make_app(providers=PRICED)
    acct = make_account(app, email="rich@example.com", balance_micros=1_000_000)
    resp = app.test_client().post(
        "/api/v1/chat/completions", json=chat("priced:echo", "a b c", max_tokens=16), headers=acct.headers
    )
    usage = resp.get_json()["usage"]
    cost = usage["prompt_tokens"] * 1 + usage["completion_tokens"] * 2  # micro-USD per token
    assert balances(app, acct) == (1_000_000 - cost, 0, cost, 0)
    with services(app).db.session_scope() as conn:
        row = conn.execute(select(usage_records)).one()
    assert (row.cost_micros, row.outcome, row.status, row.estimated) == (cost, "ok", 200, False)
    assert row.request_id == resp.headers["X-Request-Id"]


def test_streamed_call_is_billed_once_from_final_chunk(make_app):
    app = make_app(providers=PRICED)
    acct = make_account(app, email="rich@example.com", balance_micros=1_000_000)
    resp = app.test_client().post(
        "/api/v1/chat/completions", json=chat("priced:echo", "a b c d", stream=True), headers=acct.headers
    )
    resp.get_data()
    with services(app).db.session_scope() as conn:
        row = conn.execute(select(usage_records)).one()
    assert row.completion_tokens == 4 and row.stream and not row.estimated
    assert row.cost_micros == row.prompt_tokens * 1 + 4 * 2
    assert balances(app, acct)[0] == 1_000_000 - row.cost_micros


def test_reused_request_id_is_409_and_bills_nothing_twice(app, client, account):
    headers = {**account.headers, "X-Request-Id": "same-id-123456"}
    assert client.post("/api/v1/chat/completions", json=chat(), headers=headers).status_code == 200
    resp = client.post("/api/v1/chat/completions", json=chat(), headers=headers)
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "duplicate_request_id"
    assert count(app, usage_records) == 1


def test_request_ids_are_scoped_per_user(app, client, account):
    # A global UNIQUE answered another user's reused id with a 409: it told them the id was used.
    headers = {"X-Request-Id": "shared-id-123456"}
    assert (
        client.post(
            "/api/v1/chat/completions", json=chat(), headers={**account.headers, **headers}
        ).status_code
        == 200
    )
    other = make_account(app, email="other@example.com", balance_micros=1_000_000)
    resp = client.post("/api/v1/chat/completions", json=chat(), headers={**other.headers, **headers})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    with services(app).db.session_scope() as conn:
        owners = (
            conn.execute(
                select(usage_records.c.user_id).where(usage_records.c.request_id == headers["X-Request-Id"])
            )
            .scalars()
            .all()
        )
    assert sorted(owners) == sorted([account.user_id, other.user_id])


def test_holds_in_flight_with_one_id_are_separate_per_user(app):
    first = make_account(app, email="a@example.com", balance_micros=5000)
    second = make_account(app, email="b@example.com", balance_micros=5000)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold_for(first, "same"), NOW)
        billing.reserve(conn, hold_for(second, "same"), NOW)
    with pytest.raises(errors.DuplicateRequestError), services(app).db.session_scope() as conn:
        billing.reserve(conn, hold_for(first, "same"), NOW)
    # Settling one user's hold leaves the other's in place, and refreshing names the one hold.
    with services(app).db.session_scope() as conn:
        assert billing.touch(conn, [hold_for(first, "same").ref], NOW + timedelta(minutes=5)) == 1
        assert billing.settle(
            conn, hold_for(first, "same"), UsageRecord(status=200, outcome="ok", stream=False), NOW
        )
    with services(app).db.session_scope() as conn:
        left = conn.execute(select(holds.c.user_id, holds.c.heartbeat_at)).all()
    assert [row.user_id for row in left] == [second.user_id] and left[0].heartbeat_at is None
    with services(app).db.session_scope() as conn:
        # The sweep keeps what it is told to keep, by user and id.
        assert (
            billing.sweep(
                conn, timedelta(seconds=1), NOW + timedelta(hours=1), keep={hold_for(first, "same").ref}
            )
            == 1
        )


def test_reservation_covers_worst_case_from_max_tokens(make_app):
    app = make_app(providers=PRICED)
    body = chat("priced:echo", "hi", max_tokens=100)
    size = len(__import__("json").dumps(body).encode())
    # Worst case: every body byte a prompt token (1 µ$ each) plus 100 output tokens (2 µ$ each).
    acct = make_account(app, email="edge@example.com", balance_micros=size + 200 - 1)
    client = app.test_client()
    resp = client.post("/api/v1/chat/completions", json=body, headers=acct.headers)
    assert resp.status_code == 429


@pytest.mark.parametrize("n", [1, 3])
def test_reservation_covers_every_one_of_n_choices(make_app, n):
    # n answers each of up to max_tokens: a hold of one answer let n=8 spend eight times the balance.
    app = make_app(providers=PRICED)
    body = chat("priced:echo", "hi", max_tokens=100, n=n)
    size = len(json.dumps(body).encode()) + FRAMING_TOKENS + MESSAGE_TOKENS  # the prompt's bound
    client = app.test_client()
    short = make_account(app, email="short@example.com", balance_micros=size + 200 * n - 1)
    assert client.post("/api/v1/chat/completions", json=body, headers=short.headers).status_code == 429
    exact = make_account(app, email="exact@example.com", balance_micros=size + 200 * n)
    assert client.post("/api/v1/chat/completions", json=body, headers=exact.headers).status_code == 200


def test_gateway_sweeps_holds_of_dead_workers_by_itself(make_app):
    app = make_app(hold_timeout=0.2)
    acct = make_account(app, email="a@example.com", balance_micros=5000)
    with services(app).db.session_scope() as conn:  # a worker died holding this
        billing.reserve(conn, hold_for(acct, "dead-worker"), datetime.now(UTC) - timedelta(seconds=1))
    resp = app.test_client().post("/api/v1/chat/completions", json=chat(), headers=acct.headers)
    assert resp.status_code == 200
    assert count(app, holds) == 0
    assert balances(app, acct)[1] == 0
    with services(app).db.session_scope() as conn:
        outcomes = dict(conn.execute(select(usage_records.c.request_id, usage_records.c.outcome)).all())
    assert outcomes["dead-worker"] == "abandoned"


def test_reserving_an_id_in_flight_is_refused_and_rolled_back(app):
    acct = make_account(app, email="a@example.com", balance_micros=5000)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold_for(acct, "twice"), NOW)
    with pytest.raises(errors.DuplicateRequestError):
        with services(app).db.session_scope() as conn:
            billing.reserve(conn, hold_for(acct, "twice"), NOW)
    assert balances(app, acct) == (5000, 1000, 0, 1000)


def test_cached_prompt_tokens_are_billed_at_the_cached_price(make_app):
    import responses

    app = make_app(
        providers={
            "deepseek": {
                "type": "openai",
                "base_url": "http://deepseek.test/v1",
                "api_key": "sk-upstream",
                "models": {
                    "deepseek-chat": {"input_price": 0.27, "output_price": 1.10, "cached_input_price": 0.07}
                },
            }
        }
    )
    acct = make_account(app, email="cache@example.com", balance_micros=1_000_000)
    answer = {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": "deepseek-chat",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 300,
            "total_tokens": 1300,
            "prompt_cache_hit_tokens": 800,
            "prompt_cache_miss_tokens": 200,
        },
    }
    with responses.RequestsMock() as mock:
        mock.post("http://deepseek.test/v1/chat/completions", json=answer)
        resp = app.test_client().post(
            "/api/v1/chat/completions",
            json=chat("deepseek:deepseek-chat", "lorem ipsum " * 100, max_tokens=300),
            headers=acct.headers,
        )
    assert resp.status_code == 200
    # 200 misses x 0.27 + 800 hits x 0.07 + 300 out x 1.10 = 54 + 56 + 330 micro-USD
    with services(app).db.session_scope() as conn:
        row = conn.execute(select(usage_records)).one()
    assert (row.cost_micros, row.cached_tokens, row.prompt_tokens) == (440, 800, 1000)
    assert balances(app, acct) == (1_000_000 - 440, 0, 440, 0)

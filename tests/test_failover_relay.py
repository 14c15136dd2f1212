"""Failover through the whole app: fallbacks, channels, cooldowns, the hold and the one usage row.

The upstreams are `responses` at the HTTP boundary. Cooldowns live in each app's relay
(Relay.failover), so every test builds its own app for a fresh state.
"""

from __future__ import annotations

import json

import pytest
import requests
import responses
from sqlalchemy import select

from gateway.relay.hold import FRAMING_TOKENS, MESSAGE_TOKENS
from gateway.routing.failover import Failover
from gateway.store.tables import holds, usage_records, users
from tests.support.app import assert_envelope, chat, make_account, services

UP_URL = "http://upstream.test/v1/chat/completions"
CLAUDE_URL = "http://claude.test/v1/messages"
A_URL = "http://a.test/v1/chat/completions"
B_URL = "http://b.test/v1/chat/completions"
UP_PRICES = {"input_price": 1, "output_price": 2}  # USD per million tokens = micro-USD per token
CLAUDE_PRICES = {"input_price": 5, "output_price": 10}


def providers(claude_cooldown: float = 30) -> dict:
    return {
        "up": {
            "type": "openai",
            "base_url": "http://upstream.test/v1",
            "api_key": "sk-up",
            "cooldown": 30,
            "models": {"m": {**UP_PRICES, "fallbacks": ["claude:c"]}},
        },
        "claude": {
            "type": "anthropic",
            "base_url": "http://claude.test/v1",
            "api_key": "sk-claude",
            "cooldown": claude_cooldown,
            "models": {"c": dict(CLAUDE_PRICES)},
        },
    }


TWO_CHANNELS = {
    "pair": {
        "type": "openai",
        "cooldown": 30,
        "channels": [
            {"name": "a", "base_url": "http://a.test/v1", "api_key": "sk-a", "weight": 1},
            {"name": "b", "base_url": "http://b.test/v1", "api_key": "sk-b", "weight": 1},
        ],
        "models": {"m": dict(UP_PRICES)},
    }
}

OPENAI_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
CLAUDE_ANSWER = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "c",
    "content": [{"type": "text", "text": "Hello from the fallback"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 9, "output_tokens": 2},
}
SERVER_ERROR = {"error": {"message": "The server had an error.", "type": "server_error"}}
CLAUDE_ERROR = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}


@pytest.fixture
def upstream():
    # Not every registered reply is used in every test: the tests count calls themselves.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def post(client, account, body: dict):
    return client.post("/api/v1/chat/completions", json=body, headers=account.headers)


def rows(app) -> list[dict]:
    with services(app).db.session_scope() as conn:
        return [dict(r) for r in conn.execute(select(usage_records)).mappings().all()]


def row_of(app, resp) -> dict:
    (row,) = [r for r in rows(app) if r["request_id"] == resp.headers["X-Request-Id"]]
    return row


def no_holds_left(app, user_id: int) -> None:
    with services(app).db.session_scope() as conn:
        assert conn.execute(select(holds)).all() == [], "every hold must be released"
        held = conn.execute(select(users.c.held_micros).where(users.c.id == user_id)).scalar_one()
    assert held == 0


# -- every channel of the model cools, and the fallback cannot carry the request: 503 ----------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(
    "refused_by_anthropic",
    [{"n": 2}, {"response_format": {"type": "json_object"}}],
    ids=["n", "response_format"],
)
def test_a_cooling_model_whose_fallback_cannot_carry_the_request_is_503(
    make_app, upstream, stream, refused_by_anthropic
):
    # The fallback has no cooldown of its own, so after the first request only up:m is cooling.
    app = make_app(providers=providers(claude_cooldown=0))
    account = make_account(app, email="cool@example.com", balance_micros=10_000_000)
    client = app.test_client()
    up = upstream.add(responses.POST, UP_URL, status=500, json=SERVER_ERROR)
    claude = upstream.add(responses.POST, CLAUDE_URL, status=500, json=CLAUDE_ERROR)

    first = post(client, account, chat(model="up:m"))
    assert_envelope(first, 500, "upstream_error")
    assert (first.headers["X-Gateway-Model"], first.headers["X-Gateway-Attempts"]) == ("claude:c", "2")
    assert (up.call_count, claude.call_count) == (1, 1)

    second = post(client, account, chat(model="up:m", stream=stream, **refused_by_anthropic))
    error = assert_envelope(second, 503, "service_unavailable")["error"]
    assert "up:m" in error["message"] and "cooling down" in error["message"]
    assert second.headers["X-Gateway-Attempts"] == "0"  # no request went upstream
    # up:m sat out its cooldown and the fallback refused before sending: nothing more went upstream.
    assert (up.call_count, claude.call_count) == (1, 1)

    assert len(rows(app)) == 2, "one usage row per request"
    row = row_of(app, second)
    assert (row["status"], row["cost_micros"], row["stream"]) == (503, 0, stream)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (0, 0)
    no_holds_left(app, account.user_id)
    with services(app).db.session_scope() as conn:
        balance = conn.execute(select(users.c.balance_micros).where(users.c.id == account.user_id)).scalar()
    assert balance == 10_000_000, "failed requests cost nothing"


def test_a_fallback_that_cannot_carry_the_request_leaves_the_primarys_failure_then_503(make_app, upstream):
    # Same end, other road: the first request already carries n=2, so the fallback is skipped there
    # too and keeps its full cooldown budget; the client sees up's own 500, then a 503.
    app = make_app(providers=providers())
    account = make_account(app)
    client = app.test_client()
    up = upstream.add(responses.POST, UP_URL, status=500, json=SERVER_ERROR)
    claude = upstream.add(responses.POST, CLAUDE_URL, json=CLAUDE_ANSWER)

    first = post(client, account, chat(model="up:m", n=2))
    assert_envelope(first, 500, "upstream_error")
    second = post(client, account, chat(model="up:m", n=2))
    assert_envelope(second, 503, "service_unavailable")
    assert (up.call_count, claude.call_count) == (1, 0)
    assert [r["status"] for r in sorted(rows(app), key=lambda r: r["id"])] == [500, 503]
    assert row_of(app, second)["cost_micros"] == 0
    no_holds_left(app, account.user_id)

    # A request the fallback can carry is still served by it while up:m cools.
    third = post(client, account, chat(model="up:m"))
    assert third.status_code == 200, third.get_data(as_text=True)
    assert third.headers["X-Gateway-Model"] == "claude:c"
    assert (up.call_count, claude.call_count) == (1, 1)


# -- fallbacks --------------------------------------------------------------------------------------


def test_a_5xx_moves_on_to_the_fallback_which_answers_and_is_billed(make_app, upstream):
    app = make_app(providers=providers())
    account = make_account(app, email="fb@example.com", balance_micros=10_000_000)
    up = upstream.add(responses.POST, UP_URL, status=500, json=SERVER_ERROR)
    claude = upstream.add(responses.POST, CLAUDE_URL, json=CLAUDE_ANSWER)

    resp = post(app.test_client(), account, chat(model="up:m"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert (resp.headers["X-Gateway-Model"], resp.headers["X-Gateway-Attempts"]) == ("claude:c", "2")
    body = resp.get_json()
    assert body["model"] == "claude:c"
    assert body["choices"][0]["message"]["content"] == "Hello from the fallback"
    assert (up.call_count, claude.call_count) == (1, 1)
    # The fallback got the request in its own format, for its own model.
    sent = json.loads(claude.calls[0].request.body)
    assert (sent["model"], sent["messages"]) == ("c", [{"role": "user", "content": "Hi there"}])

    (row,) = rows(app)
    cost = 9 * CLAUDE_PRICES["input_price"] + 2 * CLAUDE_PRICES["output_price"]
    assert (row["model"], row["status"], row["outcome"]) == ("claude:c", 200, "ok")
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost_micros"]) == (9, 2, cost)
    assert cost != 9 * UP_PRICES["input_price"] + 2 * UP_PRICES["output_price"]
    no_holds_left(app, account.user_id)
    with services(app).db.session_scope() as conn:
        balance = conn.execute(select(users.c.balance_micros).where(users.c.id == account.user_id)).scalar()
    assert balance == 10_000_000 - cost


def test_an_upstream_400_is_not_retried_on_the_fallback(make_app, upstream):
    app = make_app(providers=providers())
    account = make_account(app)
    bad = {"error": {"message": "Bad field 'foo'.", "type": "invalid_request_error", "code": "bad_foo"}}
    up = upstream.add(responses.POST, UP_URL, status=400, json=bad)
    claude = upstream.add(responses.POST, CLAUDE_URL, json=CLAUDE_ANSWER)

    resp = post(app.test_client(), account, chat(model="up:m"))
    error = assert_envelope(resp, 400, "bad_foo")["error"]
    assert error["message"] == "Bad field 'foo'."
    assert (resp.headers["X-Gateway-Model"], resp.headers["X-Gateway-Attempts"]) == ("up:m", "1")
    assert len(upstream.calls) == 1
    assert (up.call_count, claude.call_count) == (1, 0)
    (row,) = rows(app)
    assert (row["model"], row["status"], row["cost_micros"]) == ("up:m", 400, 0)

    # Nor does a 400 bench the channel: the next request goes to up again.
    upstream.replace(responses.POST, UP_URL, json=OPENAI_ANSWER)
    again = post(app.test_client(), account, chat(model="up:m"))
    assert again.status_code == 200
    assert (again.headers["X-Gateway-Model"], again.headers["X-Gateway-Attempts"]) == ("up:m", "1")
    assert claude.call_count == 0


# -- channels ---------------------------------------------------------------------------------------


def two_channels(upstream):
    a = upstream.add(responses.POST, A_URL, status=500, json=SERVER_ERROR)
    b = upstream.add(responses.POST, B_URL, json=OPENAI_ANSWER)
    return a, b


def test_a_failing_channel_sits_out_its_cooldown_and_every_request_succeeds(make_app, upstream):
    app = make_app(providers=TWO_CHANNELS)
    account = make_account(app)
    client = app.test_client()
    a, b = two_channels(upstream)
    answers = [post(client, account, chat(model="pair:m")) for _ in range(8)]
    assert [r.status_code for r in answers] == [200] * 8
    assert a.call_count <= 1, "a failed channel is not tried again within its cooldown"
    assert b.call_count == 8
    assert sum(int(r.headers["X-Gateway-Attempts"]) for r in answers) == 8 + a.call_count
    assert [r["status"] for r in rows(app)] == [200] * 8


def test_the_first_failure_of_a_channel_benches_it_for_the_following_requests(make_app, upstream):
    app = make_app(providers=TWO_CHANNELS)
    # A constant draw leaves equal weights in their configured order: channel a is always first.
    services(app).relay.failover = Failover(rng=lambda: 0.5)
    account = make_account(app)
    client = app.test_client()
    a, b = two_channels(upstream)
    answers = [post(client, account, chat(model="pair:m")) for _ in range(8)]
    assert [r.status_code for r in answers] == [200] * 8
    assert [r.headers["X-Gateway-Attempts"] for r in answers] == ["2"] + ["1"] * 7
    assert {r.headers["X-Gateway-Model"] for r in answers} == {"pair:m"}
    assert (a.call_count, b.call_count) == (1, 8)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "headers",
    [{"Retry-After-Ms": "90000"}, {"Retry-After-Ms": "90000", "Retry-After": "2"}],
    ids=["ms-only", "ms-and-seconds"],
)
def test_a_429s_retry_after_ms_benches_the_channel_that_long(make_app, upstream, headers):
    app = make_app(providers=TWO_CHANNELS)  # cooldown 30 s: the upstream asks for 90
    clock = FakeClock()
    services(app).relay.failover = Failover(clock=clock, rng=lambda: 0.5)  # a first, as configured
    account = make_account(app)
    client = app.test_client()
    limited = {"error": {"message": "Slow down.", "type": "requests", "code": "rate_limit_exceeded"}}
    a = upstream.add(responses.POST, A_URL, status=429, json=limited, headers=headers)
    b = upstream.add(responses.POST, B_URL, json=OPENAI_ANSWER)

    def attempts() -> str:
        resp = post(client, account, chat(model="pair:m"))
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.headers["X-Gateway-Attempts"]

    assert attempts() == "2"
    clock.now += 89.9
    assert attempts() == "1"
    assert (a.call_count, b.call_count) == (1, 2)
    clock.now += 0.1
    assert attempts() == "2"
    assert (a.call_count, b.call_count) == (2, 3)


# -- the hold covers the dearest candidate ----------------------------------------------------------


def worst_cases(body: bytes, max_tokens: int) -> tuple[int, int]:
    """The worst cases of up:m and of its fallback claude:c: a token per byte and the framing, then
    max_tokens out."""
    prompt = len(body) + FRAMING_TOKENS + MESSAGE_TOKENS * len(json.loads(body)["messages"])
    up = prompt * UP_PRICES["input_price"] + max_tokens * UP_PRICES["output_price"]
    claude = prompt * CLAUDE_PRICES["input_price"] + max_tokens * CLAUDE_PRICES["output_price"]
    return up, claude


def post_raw(client, account, body: bytes):
    headers = {**account.headers, "Content-Type": "application/json"}
    return client.post("/api/v1/chat/completions", data=body, headers=headers)


def test_the_hold_covers_the_dearer_fallback(make_app, upstream):
    app = make_app(providers=providers())
    body = json.dumps(chat(model="up:m", max_tokens=100)).encode()
    primary, fallback = worst_cases(body, 100)
    assert primary < fallback
    up = upstream.add(responses.POST, UP_URL, json=OPENAI_ANSWER)

    # Enough for up:m's worst case, not for claude:c's: refused before anything goes upstream.
    poor = make_account(app, email="poor@example.com", balance_micros=fallback - 1)
    resp = post_raw(app.test_client(), poor, body)
    error = assert_envelope(resp, 429, "insufficient_quota")["error"]
    assert error["type"] == "insufficient_quota"
    assert resp.headers["x-should-retry"] == "false"
    assert (len(upstream.calls), rows(app)) == (0, [])
    no_holds_left(app, poor.user_id)

    # Exactly the dearer worst case is enough, and the cheaper model answering costs its own price.
    enough = make_account(app, email="enough@example.com", balance_micros=fallback)
    resp = post_raw(app.test_client(), enough, body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["X-Gateway-Model"] == "up:m"
    assert up.call_count == 1
    (row,) = rows(app)
    assert row["cost_micros"] == 9 * UP_PRICES["input_price"] + 2 * UP_PRICES["output_price"]
    no_holds_left(app, enough.user_id)


def test_the_hold_amount_is_the_dearer_worst_case_while_the_call_runs(make_app, upstream):
    app = make_app(providers=providers())
    body = json.dumps(chat(model="up:m", max_tokens=100)).encode()
    _, fallback = worst_cases(body, 100)
    account = make_account(app, email="seen@example.com", balance_micros=10_000_000)
    seen: list[tuple] = []

    def answer(request):
        # The upstream call runs between the reservation and the settlement: the hold is in place.
        with services(app).db.session_scope() as conn:
            seen.extend(conn.execute(select(holds.c.model, holds.c.amount_micros)).all())
        return 200, {}, json.dumps(OPENAI_ANSWER)

    upstream.add_callback(responses.POST, UP_URL, callback=answer)
    resp = post_raw(app.test_client(), account, body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert [tuple(r) for r in seen] == [("up:m", fallback)]
    no_holds_left(app, account.user_id)


def test_a_fallback_the_key_may_not_use_neither_raises_the_hold_nor_answers(make_app, upstream):
    app = make_app(providers=providers())
    body = json.dumps(chat(model="up:m", max_tokens=100)).encode()
    primary, _ = worst_cases(body, 100)
    account = make_account(app, email="only-up@example.com", balance_micros=primary, allowed_models=["up:m"])
    up = upstream.add(responses.POST, UP_URL, status=500, json=SERVER_ERROR)
    claude = upstream.add(responses.POST, CLAUDE_URL, json=CLAUDE_ANSWER)
    resp = post_raw(app.test_client(), account, body)
    assert_envelope(resp, 500, "upstream_error")
    assert resp.headers["X-Gateway-Attempts"] == "1"
    assert (up.call_count, claude.call_count) == (1, 0)
    no_holds_left(app, account.user_id)


def same_provider(cooldown: float) -> dict:
    """up:m falls back to up:m2, which goes through the same (only) channel."""
    models = {"m": {"fallbacks": ["up:m2"]}, "m2": {}}
    return {"up": {"base_url": "http://upstream.test/v1", "cooldown": cooldown, "models": models}}


@pytest.mark.parametrize("cooldown", [30, 0])
def test_a_channel_that_failed_as_a_channel_is_not_tried_again_for_a_fallback(make_app, upstream, cooldown):
    # A fallback on the same provider goes through the same channel: unreachable once, unreachable
    # again (a timeout would make the client wait twice), even with cooldowns off.
    app = make_app(providers=same_provider(cooldown))
    account = make_account(app)
    down = upstream.add(responses.POST, UP_URL, body=requests.ConnectionError("refused"))
    resp = post(app.test_client(), account, chat(model="up:m"))
    assert_envelope(resp, 502, "upstream_connection_error")
    assert (down.call_count, resp.headers["X-Gateway-Attempts"]) == (1, "1")


def test_a_status_failure_still_lets_a_fallback_on_the_same_channel_try(make_app, upstream):
    # A 5xx may be the model's own trouble: another model behind the same channel gets its try.
    app = make_app(providers=same_provider(0))
    account = make_account(app)
    busy = upstream.add(responses.POST, UP_URL, status=503, json=SERVER_ERROR)
    resp = post(app.test_client(), account, chat(model="up:m"))
    assert resp.status_code == 503
    assert (busy.call_count, resp.headers["X-Gateway-Attempts"]) == (2, "2")

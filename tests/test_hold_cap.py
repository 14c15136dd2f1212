"""The hold is a cap: the output cap that was held goes upstream, in each provider's own field, always,
and a settlement never charges more than the hold, whatever the upstream reports.

The upstream is `responses`; its callbacks read the hold the gateway committed before calling it,
and assert the exact cap fields it sent.
"""

from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import select

from gateway.relay.hold import FRAMING_TOKENS, IMAGE_TOKENS, MESSAGE_TOKENS
from gateway.store.tables import api_keys, holds, usage_records, users
from tests.support.app import chat, make_account, services

BASE = "http://upstream.test/v1"
PRICES = {"input_price": 1, "output_price": 2}  # micro-USD per prompt and per completion token
PROVIDERS = {
    "up": {
        "type": "openai",
        "base_url": BASE,
        "models": {"m": PRICES, "short": dict(PRICES, max_output_tokens=100)},
    },
    "renamed": {
        "type": "openai",
        "base_url": "http://renamed.test/v1",
        "rename_params": {"max_completion_tokens": "max_tokens"},
        "models": {"m": PRICES},
    },
    "claude": {"type": "anthropic", "base_url": "http://anthropic.test/v1", "models": {"c": PRICES}},
    "gem": {"type": "gemini", "base_url": "http://gemini.test/v1beta", "models": {"g": PRICES}},
}


def answer(completion_tokens: int = 2) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": completion_tokens,
            "total_tokens": 5 + completion_tokens,
        },
    }


@pytest.fixture
def app(make_app):
    return make_app(providers=PROVIDERS)


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


class Seen:
    """What the upstream received, and the hold that stood while it was called."""

    def __init__(self, app, reply: dict) -> None:
        self.app, self.reply = app, reply
        self.body: dict = {}
        self.held = 0

    def __call__(self, request):
        self.body = json.loads(request.body)
        with services(self.app).db.session_scope() as conn:
            self.held = conn.execute(select(holds.c.amount_micros)).scalar_one()
        return 200, {"Content-Type": "application/json"}, json.dumps(self.reply)


def watch(app, upstream, url: str, reply: dict | None = None) -> Seen:
    seen = Seen(app, reply or answer())
    upstream.add_callback(responses.POST, url, callback=seen)
    return seen


def post(app, account, body: dict | bytes, path: str = "/api/v1/chat/completions"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = dict(account.headers, **{"Content-Type": "application/json"})
    return app.test_client().post(path, data=data, headers=headers)


def rich(app):
    return make_account(app, email="ada@example.com", balance_micros=10**9)


def test_a_request_without_a_cap_sends_the_held_default_upstream(app, upstream):
    seen = watch(app, upstream, f"{BASE}/chat/completions")
    raw = json.dumps(chat(model="up:m")).encode()
    assert post(app, rich(app), raw).status_code == 200
    assert seen.body["max_tokens"] == 4096 and "max_completion_tokens" not in seen.body
    assert seen.held == len(raw) + FRAMING_TOKENS + MESSAGE_TOKENS + 4096 * 2


def test_the_models_own_cap_is_held_and_sent(app, upstream):
    seen = watch(app, upstream, f"{BASE}/chat/completions")
    assert post(app, rich(app), chat(model="up:short")).status_code == 200
    assert seen.body["max_tokens"] == 100


def test_max_completion_tokens_wins_and_is_the_only_cap_that_goes_up(app, upstream):
    seen = watch(app, upstream, f"{BASE}/chat/completions")
    raw = json.dumps(chat(model="up:m", max_completion_tokens=1, max_tokens=8000)).encode()
    assert post(app, rich(app), raw).status_code == 200
    assert seen.body["max_completion_tokens"] == 1 and "max_tokens" not in seen.body
    assert seen.held == len(raw) + FRAMING_TOKENS + MESSAGE_TOKENS + 1 * 2


def test_a_renamed_cap_carries_the_held_value_not_the_clients_other_field(app, upstream):
    seen = watch(app, upstream, "http://renamed.test/v1/chat/completions")
    body = chat(model="renamed:m", max_completion_tokens=1, max_tokens=8000)
    assert post(app, rich(app), body).status_code == 200
    assert seen.body["max_tokens"] == 1 and "max_completion_tokens" not in seen.body


def test_legacy_best_of_is_held_for_every_answer_generated(app, upstream):
    reply = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "text": "x", "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    seen = watch(app, upstream, f"{BASE}/completions", reply)
    raw = json.dumps({"model": "up:m", "prompt": "hello", "max_tokens": 10, "best_of": 20}).encode()
    assert post(app, rich(app), raw, "/api/v1/completions").status_code == 200
    assert seen.held == len(raw) + FRAMING_TOKENS + MESSAGE_TOKENS + 20 * 10 * 2
    assert seen.body["max_tokens"] == 10


def test_best_of_past_the_limit_is_a_400(app):
    body = {"model": "up:m", "prompt": "hello", "best_of": 10**9}
    resp = post(app, rich(app), body, "/api/v1/completions")
    assert resp.status_code == 400 and resp.get_json()["error"]["param"] == "best_of"


def test_an_image_behind_an_escaped_key_is_held_all_the_same(app, upstream):
    seen = watch(app, upstream, f"{BASE}/chat/completions")
    part = '{"type": "image_url", "image\\u005furl": {"url": "https://example.com/a.png"}}'
    raw = f'{{"model": "up:m", "messages": [{{"role": "user", "content": [{part}, {part}]}}]}}'.encode()
    assert post(app, rich(app), raw).status_code == 200
    assert seen.held == len(raw) + FRAMING_TOKENS + MESSAGE_TOKENS + 2 * IMAGE_TOKENS + 4096 * 2


def test_anthropic_gets_the_held_cap_in_max_tokens(app, upstream):
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "c",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    seen = watch(app, upstream, "http://anthropic.test/v1/messages", message)
    assert post(app, rich(app), chat(model="claude:c", max_tokens=77)).status_code == 200
    assert seen.body["max_tokens"] == 77


def test_gemini_gets_the_held_cap_in_max_output_tokens(app, upstream):
    reply = {
        "candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
    }
    seen = watch(app, upstream, "http://gemini.test/v1beta/models/g:generateContent", reply)
    assert post(app, rich(app), chat(model="gem:g")).status_code == 200
    assert seen.body["generationConfig"]["maxOutputTokens"] == 4096


def test_usage_beyond_the_hold_is_charged_the_hold_and_counted(app, upstream):
    raw = json.dumps(chat(model="up:m", max_tokens=10)).encode()
    worst = len(raw) + FRAMING_TOKENS + MESSAGE_TOKENS + 10 * 2
    # Just enough for the hold, and a key limit of exactly the hold: an overrun would pass both.
    account = make_account(app, email="bo@example.com", balance_micros=worst, limit_micros=worst)
    watch(app, upstream, f"{BASE}/chat/completions", answer(completion_tokens=50_000))
    assert post(app, account, raw).status_code == 200
    with services(app).db.session_scope() as conn:
        balance = conn.execute(
            select(users.c.balance_micros).where(users.c.id == account.user_id)
        ).scalar_one()
        spent = conn.execute(
            select(api_keys.c.spent_micros).where(api_keys.c.id == account.key_id)
        ).scalar_one()
        cost = conn.execute(select(usage_records.c.cost_micros)).scalar_one()
    assert (balance, spent, cost) == (0, worst, worst)
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    overrun = 5 * 1 + 50_000 * 2 - worst
    assert 'gateway_settlement_overruns_total{model="up:m"} 1.0' in metrics
    assert f'gateway_settlement_overrun_micros_total{{model="up:m"}} {float(overrun)}' in metrics

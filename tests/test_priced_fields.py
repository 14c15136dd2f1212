"""Fields that change the provider's price are dropped (service_tier) or refused (audio), on every surface.

The upstream is `responses`, so the test sees the exact body the gateway sent.
"""

from __future__ import annotations

import json

import pytest
import responses
from sqlalchemy import func, select

from gateway.store.tables import holds, usage_records
from tests.support.app import chat, make_account, services

PRICES = {"input_price": 1, "output_price": 2}
PROVIDERS = {
    "up": {"type": "openai", "base_url": "http://upstream.test/v1", "models": {"m": PRICES}},
    "claude": {"type": "anthropic", "base_url": "http://anthropic.test/v1", "models": {"c": PRICES}},
}
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}
AUDIO = {"data": "AAAA", "format": "wav"}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "c",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


@pytest.fixture
def app(make_app):
    return make_app(providers=PROVIDERS)


@pytest.fixture
def sent():
    """Yield the list of JSON bodies the fake upstreams receive."""
    bodies: list[dict] = []

    def reply(payload):
        def callback(request):
            bodies.append(json.loads(request.body))
            return 200, {"Content-Type": "application/json"}, json.dumps(payload)

        return callback

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, "http://upstream.test/v1/chat/completions", callback=reply(ANSWER))
        mock.add_callback(responses.POST, "http://anthropic.test/v1/messages", callback=reply(MESSAGE))
        yield bodies


def post(app, path: str, body: dict, **headers: str):
    acct = make_account(app, email="ada@example.com", balance_micros=10**9)
    return app.test_client().post(path, json=body, headers=dict(acct.headers, **headers))


@pytest.mark.parametrize("tier", ["priority", "flex", "auto", "scale"])
def test_service_tier_is_dropped_so_the_configured_price_is_what_the_provider_charges(app, sent, tier):
    resp = post(app, "/api/v1/chat/completions", chat("up:m", service_tier=tier))
    assert resp.status_code == 200, resp.get_json()
    assert len(sent) == 1 and "service_tier" not in sent[0]
    assert sent[0]["messages"] == [{"role": "user", "content": "Hi there"}]


def test_service_tier_is_dropped_on_the_anthropic_messages_surface_too(app, sent):
    body = {
        "model": "claude:c",
        "max_tokens": 10,
        "service_tier": "auto",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    resp = post(app, "/api/v1/messages", body, **{"anthropic-version": "2023-06-01"})
    assert resp.status_code == 200, resp.get_json()
    assert len(sent) == 1 and "service_tier" not in sent[0]


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": AUDIO}],
                    }
                ]
            },
            "messages[0].content",
        ),
    ],
)
def test_audio_is_refused_before_any_hold_or_upstream_call(app, sent, extra, param):
    resp = post(app, "/api/v1/chat/completions", chat("up:m", **extra))
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "unsupported_parameter",
        param,
    )
    assert "audio" in error["message"].lower()
    assert sent == []
    with services(app).db.session_scope() as conn:
        assert conn.execute(select(func.count()).select_from(holds)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(usage_records)).scalar_one() == 0


def test_text_modalities_alone_pass(app, sent):
    resp = post(app, "/api/v1/chat/completions", chat("up:m", modalities=["text"]))
    assert resp.status_code == 200
    assert sent[0]["modalities"] == ["text"]

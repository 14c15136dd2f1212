"""POST /api/v1/messages, count_tokens, the Anthropic model list and HEAD /api through the Flask app.

Upstreams are `responses` at the HTTP boundary, with matchers on the exact request sent. An anthropic
upstream gets the client's body natively; an OpenAI-compatible one gets the canonical chat body.
Every billed request leaves exactly one usage row and no hold; refusals leave none and call nothing.
"""

from __future__ import annotations

import json

import anthropic
import pytest
import responses
from responses import matchers
from sqlalchemy import select

from gateway.store import ratelimit
from gateway.store.tables import holds, usage_records
from tests.support.app import make_account, services
from tests.surfaces import messages_golden as golden
from tests.surfaces import messages_sdk as sdk

SECRET = "sk-upstream-secret-789"
CLAUDE_URL = "http://anthropic.test/v1/messages"
OPENAI_URL = "http://upstream.test/v1/chat/completions"
# USD per million tokens = micro-USD per token.
CLAUDE_PRICES = {"input_price": 3, "output_price": 15, "cached_input_price": 0.3, "cache_write_price": 3.75}
PROVIDERS = {
    "claude": {
        "type": "anthropic",
        "base_url": "http://anthropic.test/v1",
        "api_key": SECRET,
        "models": {"sonnet": {**CLAUDE_PRICES, "upstream_id": "claude-sonnet-x", "context_length": 200000}},
    },
    "up": {
        "type": "openai",
        "base_url": "http://upstream.test/v1",
        "api_key": SECRET,
        "models": {"m": {"input_price": 1, "output_price": 2, "max_output_tokens": 8192}},
    },
}
ALIASES = {"claude-sonnet": "claude:sonnet"}
BETA = "claude-code-20250219,interleaved-thinking-2025-05-14"
USAGE = {
    "input_tokens": 10,
    "cache_creation_input_tokens": 100,
    "cache_read_input_tokens": 1000,
    "output_tokens": 5,
}
COST = 10 * 3 + 100 * 3.75 + 1000 * 0.3 + 5 * 15  # 780 micro-USD
MESSAGE = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-x",
    "content": [{"type": "text", "text": "Hi there"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": USAGE,
}
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "Hi there"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}


@pytest.fixture
def app(make_app):
    return make_app(providers=PROVIDERS, aliases=ALIASES)


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def headers(account, **extra: str) -> dict[str, str]:
    """Return what the anthropic SDK sends: the key as x-api-key, anthropic-version and a beta."""
    return {"x-api-key": account.secret, "anthropic-version": "2023-06-01", "anthropic-beta": BETA, **extra}


def message_body(model: str = "claude:sonnet", **extra) -> dict:
    body = {"model": model, "max_tokens": 1000, "messages": [{"role": "user", "content": "Hi there"}]}
    body.update(extra)
    return body


def rows(app) -> list[dict]:
    with services(app).db.session_scope() as conn:
        found = [dict(r) for r in conn.execute(select(usage_records)).mappings().all()]
        assert conn.execute(select(holds)).all() == [], "every hold is released"
    return found


def anthropic_error(resp, status: int, kind: str, retry: bool = False) -> dict:
    """Check an error is Anthropic's envelope, with x-should-retry: false unless a retry may help."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"type", "error", "request_id"}
    assert body["type"] == "error" and body["error"]["type"] == kind
    assert body["request_id"] == resp.headers["X-Request-Id"] == resp.headers["request-id"]
    assert resp.headers.get("x-should-retry") == (None if retry else "false")
    return body["error"]


def test_native_whole_answer_goes_up_as_sent_and_bills_cache_reads_and_writes(app, client, account, upstream):
    body = message_body(
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        metadata={"user_id": "u1"},
    )
    sent = dict(body, model="claude-sonnet-x")
    upstream.add(
        responses.POST,
        CLAUDE_URL,
        json=MESSAGE,
        match=[
            matchers.json_params_matcher(sent, strict_match=True),
            matchers.header_matcher(
                {"x-api-key": SECRET, "anthropic-version": "2023-06-01", "anthropic-beta": BETA}
            ),
        ],
    )
    resp = client.post("/api/v1/messages?beta=true", json=body, headers=headers(account))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert json.loads(resp.data) == dict(MESSAGE, model="claude:sonnet")
    assert sdk.whole_message(resp.data).usage.cache_read_input_tokens == 1000
    assert (resp.headers["X-Gateway-Model"], resp.headers["X-Gateway-Attempts"]) == ("claude:sonnet", "1")
    assert float(resp.headers["X-Gateway-Overhead-Ms"]) >= 0
    assert resp.headers["request-id"] == resp.headers["X-Request-Id"]
    assert "X-Gateway-Dropped-Fields" not in resp.headers
    (call,) = upstream.calls
    assert account.secret not in json.dumps(dict(call.request.headers)) + call.request.body.decode()
    (row,) = rows(app)
    assert (row["request_id"], row["model"], row["status"], row["stream"]) == (
        resp.headers["X-Request-Id"],
        "claude:sonnet",
        200,
        False,
    )
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (1110, 1000, 5)
    assert row["cost_micros"] == COST


def test_native_stream_is_relayed_event_for_event(app, client, account, upstream):
    raw = golden.path("native_text_cache", ".native.sse").read_bytes()
    upstream.add(responses.POST, CLAUDE_URL, body=raw, content_type="text/event-stream")
    resp = client.post("/api/v1/messages", json=message_body(stream=True), headers=headers(account))
    assert resp.status_code == 200
    assert resp.mimetype == "text/event-stream"
    assert resp.headers["X-Gateway-Model"] == "claude:sonnet"
    out = resp.get_data()
    assert out.split(b"\n\n")[1:] == raw.split(b"\n\n")[1:]  # only message_start's model changes
    assert sdk.final_message(out).content[0].text == "Hei, verden!"
    assert json.loads(upstream.calls[0].request.body)["stream"] is True
    (row,) = rows(app)
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"], row["stream"]) == (
        21512,
        20000,
        9,
        True,
    )
    assert row["cost_micros"] == 12 * 3 + 1500 * 3.75 + 20000 * 0.3 + 9 * 15


def test_translated_whole_answer_is_a_message_billed_once(app, client, account, upstream):
    canonical = {
        "model": "m",
        "messages": [{"role": "user", "content": "Hi there"}],
        "max_completion_tokens": 1000,
    }
    upstream.add(
        responses.POST,
        OPENAI_URL,
        json=COMPLETION,
        match=[
            matchers.json_params_matcher(canonical, strict_match=True),
            matchers.header_matcher({"Authorization": f"Bearer {SECRET}"}),
        ],
    )
    body = message_body("up:m", future_knob={"x": 1})
    resp = client.post("/api/v1/messages", json=body, headers=headers(account))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    message = sdk.whole_message(resp.data)
    assert (message.model, message.content[0].text, message.stop_reason) == ("up:m", "Hi there", "end_turn")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 2)
    assert resp.headers["X-Gateway-Dropped-Fields"] == "future_knob"
    (row,) = rows(app)
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"], row["cost_micros"]) == (
        "up:m",
        9,
        2,
        13,
    )


def chunk(delta: dict, finish: str | None = None, **extra) -> bytes:
    data = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    data["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + json.dumps(dict(data, **extra)).encode() + b"\n\n"


def test_translated_stream_is_anthropic_events_with_usage_and_tool_calls(app, client, account, upstream):
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "Read", "arguments": ""}}
    usage = {"prompt_tokens": 40, "completion_tokens": 7, "total_tokens": 47}
    raw = b"".join(
        [
            chunk({"role": "assistant", "content": "Let me look."}),
            chunk({"tool_calls": [call]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"file_path":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "/tmp/a"}'}}]}),
            chunk({}, "tool_calls"),
            b"data: " + json.dumps({"id": "c1", "choices": [], "usage": usage}).encode() + b"\n\n",
            b"data: [DONE]\n\n",
        ]
    )
    upstream.add(responses.POST, OPENAI_URL, body=raw, content_type="text/event-stream")
    tools = [
        {"name": "Read", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}
    ]
    resp = client.post(
        "/api/v1/messages", json=message_body("up:m", stream=True, tools=tools), headers=headers(account)
    )
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    sent = json.loads(upstream.calls[0].request.body)
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["tools"][0]["function"]["name"] == "Read"
    message = sdk.final_message(resp.get_data())
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert (message.content[1].id, message.content[1].input) == ("call_1", {"file_path": "/tmp/a"})
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "tool_use",
        40,
        7,
    )
    (row,) = rows(app)
    assert (row["prompt_tokens"], row["completion_tokens"], row["estimated"], row["cost_micros"]) == (
        40,
        7,
        False,
        54,
    )


def test_an_error_after_the_first_byte_is_anthropics_in_band_error(app, client, account, upstream):
    raw = chunk({"role": "assistant", "content": "partial"}) + b'data: {"error": {"message": "boom"}}\n\n'
    upstream.add(responses.POST, OPENAI_URL, body=raw, content_type="text/event-stream")
    resp = client.post("/api/v1/messages", json=message_body("up:m", stream=True), headers=headers(account))
    assert resp.status_code == 200
    out = resp.get_data()
    last = out.rstrip(b"\n").split(b"\n\n")[-1]
    assert last.startswith(b"event: error\ndata: ")
    error = json.loads(last.split(b"data: ", 1)[1])
    assert error["type"] == "error" and error["request_id"] == resp.headers["X-Request-Id"]
    with pytest.raises(anthropic.APIStatusError):
        sdk.final_message(out)
    (row,) = rows(app)
    assert (row["status"], row["outcome"], row["estimated"]) == (200, "upstream_error", True)
    assert row["completion_tokens"] > 0  # what was relayed is billed


def test_an_upstream_overload_before_the_first_byte_may_be_retried(app, client, account, upstream):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    upstream.add(responses.POST, CLAUDE_URL, json=overloaded, status=529)
    resp = client.post("/api/v1/messages", json=message_body(stream=True), headers=headers(account))
    anthropic_error(resp, 503, "overloaded_error", retry=True)
    (row,) = rows(app)
    assert (row["status"], row["cost_micros"]) == (503, 0)


def test_alias_routes_and_the_row_names_the_real_model(app, client, account, upstream):
    upstream.add(responses.POST, CLAUDE_URL, json=MESSAGE)
    resp = client.post("/api/v1/messages", json=message_body("claude-sonnet"), headers=headers(account))
    assert resp.status_code == 200
    assert json.loads(upstream.calls[0].request.body)["model"] == "claude-sonnet-x"
    assert rows(app)[0]["model"] == "claude:sonnet"


def test_bearer_auth_works_as_claude_codes_auth_token_does(app, client, account, upstream):
    upstream.add(responses.POST, CLAUDE_URL, json=MESSAGE)
    auth = {"Authorization": f"Bearer {account.secret}", "anthropic-version": "2023-06-01"}
    assert client.post("/api/v1/messages", json=message_body(), headers=auth).status_code == 200


@pytest.mark.parametrize(
    "key, status, kind",
    [
        (None, 401, "authentication_error"),
        ("sk-" + "x" * 43, 401, "authentication_error"),
    ],
)
def test_a_bad_key_is_a_final_authentication_error(app, client, upstream, key, status, kind):
    sent = {"anthropic-version": "2023-06-01", **({"x-api-key": key} if key else {})}
    anthropic_error(client.post("/api/v1/messages", json=message_body(), headers=sent), status, kind)
    assert rows(app) == []


def test_unknown_model_is_a_final_not_found(app, client, account, upstream):
    resp = client.post("/api/v1/messages", json=message_body("claude:nope"), headers=headers(account))
    anthropic_error(resp, 404, "not_found_error")
    assert rows(app) == []


def test_key_model_limits_hold_on_this_surface(app, client, upstream):
    limited = make_account(app, email="l@example.com", unlimited=True, allowed_models=["up:m"])
    resp = client.post("/api/v1/messages", json=message_body(), headers=headers(limited))
    anthropic_error(resp, 403, "permission_error")
    assert rows(app) == []


def test_an_empty_balance_is_a_final_429_and_calls_nothing(app, client, upstream):
    poor = make_account(app, email="p@example.com", balance_micros=0)
    resp = client.post("/api/v1/messages", json=message_body(), headers=headers(poor))
    anthropic_error(resp, 429, "billing_error")
    assert rows(app) == []


def test_a_rate_limit_is_a_429_the_client_may_retry_after(app, client, upstream):
    acct = make_account(app, email="r@example.com", unlimited=True)
    with services(app).db.session_scope() as conn:
        ratelimit.set_limits(conn, "key", acct.key_id, rpm_limit=1)
    upstream.add(responses.POST, CLAUDE_URL, json=MESSAGE)
    assert client.post("/api/v1/messages", json=message_body(), headers=headers(acct)).status_code == 200
    resp = client.post("/api/v1/messages", json=message_body(), headers=headers(acct))
    anthropic_error(resp, 429, "rate_limit_error", retry=True)
    assert int(resp.headers["retry-after"]) >= 1
    assert len(rows(app)) == 1


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "up:m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": "up:m", "max_tokens": 10, "messages": []}, "messages"),
        (
            message_body("up:m", tools=[{"type": "web_search_20250305", "name": "web_search"}]),
            "tools[0].type",
        ),
        (
            message_body("up:m", mcp_servers=[{"type": "url", "url": "https://m.test", "name": "m"}]),
            "mcp_servers",
        ),
    ],
)
def test_a_body_the_translation_cannot_carry_is_a_final_400_before_anything_is_held(
    app, client, account, upstream, body, param
):
    resp = client.post("/api/v1/messages", json=body, headers=headers(account))
    assert param in anthropic_error(resp, 400, "invalid_request_error")["message"]
    assert rows(app) == []


def test_a_body_that_is_not_json_is_a_final_400(app, client, account, upstream):
    resp = client.post(
        "/api/v1/messages", data=b"{", content_type="application/json", headers=headers(account)
    )
    anthropic_error(resp, 400, "invalid_request_error")


def test_count_tokens_on_anthropic_is_anthropics_count_and_bills_nothing(app, client, account, upstream):
    body = {"model": "claude:sonnet", "messages": [{"role": "user", "content": "Hi there"}]}
    upstream.add(
        responses.POST,
        CLAUDE_URL + "/count_tokens",
        json={"input_tokens": 11},
        match=[
            matchers.json_params_matcher(dict(body, model="claude-sonnet-x"), strict_match=True),
            matchers.header_matcher({"x-api-key": SECRET, "anthropic-beta": BETA}),
        ],
    )
    resp = client.post("/api/v1/messages/count_tokens?beta=true", json=body, headers=headers(account))
    assert resp.status_code == 200
    assert resp.get_json() == {"input_tokens": 11}
    assert "X-Gateway-Estimated" not in resp.headers
    assert rows(app) == []


def test_count_tokens_elsewhere_is_the_estimate(app, client, account, upstream):
    body = golden.load(golden.path("claude_code", ".request.json"))
    resp = client.post(
        "/api/v1/messages/count_tokens", json=dict(body, model="up:m"), headers=headers(account)
    )
    assert resp.status_code == 200 and resp.headers["X-Gateway-Estimated"] == "true"
    assert resp.get_json()["input_tokens"] > len(json.dumps(body["tools"])) // 4
    assert rows(app) == []


@pytest.mark.parametrize("status", [404, 500])
def test_count_tokens_falls_back_to_the_estimate_when_the_upstream_cannot_count(
    app, client, account, upstream, status
):
    upstream.add(
        responses.POST, CLAUDE_URL + "/count_tokens", json={"type": "error", "error": {}}, status=status
    )
    body = {"model": "claude:sonnet", "messages": [{"role": "user", "content": "Hi there"}]}
    resp = client.post("/api/v1/messages/count_tokens", json=body, headers=headers(account))
    assert resp.status_code == 200 and resp.headers["X-Gateway-Estimated"] == "true"


def test_count_tokens_relays_the_upstreams_refusal_of_the_body(app, client, account, upstream):
    refusal = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Extra inputs"},
    }
    upstream.add(responses.POST, CLAUDE_URL + "/count_tokens", json=refusal, status=400)
    body = {"model": "claude:sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}
    resp = client.post("/api/v1/messages/count_tokens", json=body, headers=headers(account))
    assert "Extra inputs" in anthropic_error(resp, 400, "invalid_request_error")["message"]


@pytest.mark.parametrize(
    "body, status, kind",
    [
        ({"messages": []}, 400, "invalid_request_error"),
        ({"model": "up:m"}, 400, "invalid_request_error"),
        ({"model": "nope:x", "messages": []}, 404, "not_found_error"),
    ],
)
def test_count_tokens_checks_the_model_and_messages(app, client, account, upstream, body, status, kind):
    anthropic_error(
        client.post("/api/v1/messages/count_tokens", json=body, headers=headers(account)), status, kind
    )


def test_count_tokens_needs_a_key(app, client, upstream):
    resp = client.post("/api/v1/messages/count_tokens", json={"model": "up:m", "messages": []})
    anthropic_error(resp, 401, "authentication_error")


def test_models_in_anthropics_shape_when_the_client_speaks_anthropic(app, client, account):
    resp = client.get(
        "/api/v1/models", headers={"x-api-key": account.secret, "anthropic-version": "2023-06-01"}
    )
    page = resp.get_json()
    assert set(page) == {"data", "has_more", "first_id", "last_id"}
    assert page["has_more"] is False
    ids = [m["id"] for m in page["data"]]
    assert ids[0] == page["first_id"] and ids[-1] == page["last_id"]
    assert {"claude:sonnet", "up:m", "claude-sonnet", "mock:echo"} <= set(ids)
    by_id = {m["id"]: anthropic.types.ModelInfo.model_validate(m) for m in page["data"]}
    assert by_id["claude:sonnet"].max_input_tokens == 200000
    assert by_id["up:m"].max_tokens == 8192
    assert by_id["claude-sonnet"].display_name == "claude-sonnet (claude:sonnet)"
    one = client.get("/api/v1/models/claude:sonnet", headers=headers(account)).get_json()
    assert anthropic.types.ModelInfo.model_validate(one).id == "claude:sonnet"


def test_models_stay_openais_for_everyone_else(app, client, account):
    page = client.get("/api/v1/models", headers=account.headers).get_json()
    assert page["object"] == "list" and page["data"][0]["object"] == "model"


def test_head_api_answers_claude_codes_probe(client):
    assert client.head("/api").status_code == 200
    assert client.head("/api?beta=true").status_code == 200

"""POST /api/v1/responses and the stored responses through the Flask app.

Upstreams are `responses` at the HTTP boundary: a chat-only one gets the canonical chat body, a
Responses-native one gets the client's body with the model swapped and the held cap. Every billed
request leaves exactly one usage row and no hold; stored responses are per user.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import responses
from responses import matchers
from sqlalchemy import select

from gateway.store.tables import holds, usage_records
from gateway.store.tables import responses as stored_responses
from tests.support.app import FixedClock, assert_envelope, make_account, services
from tests.surfaces import responses_grammar as grammar
from tests.surfaces import responses_sdk as sdk

SECRET = "sk-upstream-secret-789"
CHAT_URL = "http://upstream.test/v1/chat/completions"
NATIVE_URL = "http://native.test/v1/responses"
PROVIDERS = {
    "up": {
        "type": "openai",
        "base_url": "http://upstream.test/v1",
        "api_key": SECRET,
        "models": {"m": {"input_price": 1, "output_price": 2, "max_output_tokens": 8192}},
    },
    "oa": {
        "type": "openai",
        "base_url": "http://native.test/v1",
        "api_key": SECRET,
        "responses": "native",
        "models": {
            "g": {"input_price": 1, "output_price": 2, "upstream_id": "gpt-x", "max_output_tokens": 8192}
        },
    },
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
CALL = {
    "id": "chatcmpl-2",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": '{"d":"."}'}}
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
}
NATIVE = {
    "id": "resp_upstream1",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "model": "gpt-x",
    "output": [
        {
            "id": "msg_u1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Native hi", "annotations": []}],
        }
    ],
    "usage": {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10,
    },
}
TOOLS = [{"type": "function", "name": "ls", "parameters": {"type": "object", "properties": {}}}]


@pytest.fixture
def app(make_app):
    return make_app(providers=PROVIDERS)


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def rows(app) -> list[dict]:
    with services(app).db.session_scope() as conn:
        found = [dict(r) for r in conn.execute(select(usage_records)).mappings().all()]
        assert conn.execute(select(holds)).all() == [], "every hold is released"
    return found


def chat_stream(*chunks: dict) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> dict:
    out = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    out["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        out["usage"] = usage
    return out


def test_translated_whole_response_is_billed_once_and_stored(app, client, account, upstream):
    sent = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ],
        "max_completion_tokens": 100,
    }
    upstream.add(
        responses.POST,
        CHAT_URL,
        json=COMPLETION,
        match=[matchers.json_params_matcher(sent, strict_match=True)],
    )
    body = {"model": "up:m", "input": "Hi", "instructions": "Be brief.", "max_output_tokens": 100}
    resp = client.post("/api/v1/responses", json=body, headers=account.headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    data = resp.get_json()
    sdk.validate_response(data)
    parsed = sdk.whole(data)
    assert (parsed.output_text, parsed.model, parsed.status) == ("Hi there", "up:m", "completed")
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (9, 2)
    (row,) = rows(app)
    assert (row["model"], row["prompt_tokens"], row["completion_tokens"], row["cost_micros"]) == (
        "up:m",
        9,
        2,
        13,
    )
    got = client.get(f"/api/v1/responses/{data['id']}", headers=account.headers)
    assert got.status_code == 200 and got.get_json() == data
    items = client.get(f"/api/v1/responses/{data['id']}/input_items?order=asc", headers=account.headers)
    assert [i["content"][0]["text"] for i in items.get_json()["data"]] == ["Hi"]


def test_function_call_round_trip_with_previous_response_id(app, client, account, upstream):
    upstream.add(responses.POST, CHAT_URL, json=CALL)
    first = client.post(
        "/api/v1/responses",
        json={"model": "up:m", "input": "List it", "tools": TOOLS},
        headers=account.headers,
    )
    assert first.status_code == 200, first.get_data(as_text=True)
    (call,) = [item for item in first.get_json()["output"] if item["type"] == "function_call"]
    assert (call["name"], call["call_id"], call["arguments"]) == ("ls", "call_1", '{"d":"."}')
    upstream.add(responses.POST, CHAT_URL, json=COMPLETION)
    second = {
        "model": "up:m",
        "previous_response_id": first.get_json()["id"],
        "input": [{"type": "function_call_output", "call_id": "call_1", "output": "a.txt"}],
        "tools": TOOLS,
    }
    resp = client.post("/api/v1/responses", json=second, headers=account.headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    messages = json.loads(upstream.calls[1].request.body)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == "call_1"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"}
    assert len(rows(app)) == 2


def test_another_users_response_is_not_found(app, client, account, upstream):
    upstream.add(responses.POST, CHAT_URL, json=COMPLETION)
    made = client.post("/api/v1/responses", json={"model": "up:m", "input": "Hi"}, headers=account.headers)
    response_id = made.get_json()["id"]
    other = make_account(app, email="other@example.com", unlimited=True)
    for resp in (
        client.get(f"/api/v1/responses/{response_id}", headers=other.headers),
        client.get(f"/api/v1/responses/{response_id}/input_items", headers=other.headers),
        client.delete(f"/api/v1/responses/{response_id}", headers=other.headers),
    ):
        assert_envelope(resp, 404, "not_found", "response_id")
    cont = {"model": "up:m", "input": "More", "previous_response_id": response_id}
    assert_envelope(
        client.post("/api/v1/responses", json=cont, headers=other.headers),
        404,
        "not_found",
        "previous_response_id",
    )
    deleted = client.delete(f"/api/v1/responses/{response_id}", headers=account.headers)
    assert deleted.get_json() == {"id": response_id, "object": "response.deleted", "deleted": True}
    assert client.get(f"/api/v1/responses/{response_id}", headers=account.headers).status_code == 404
    assert len(rows(app)) == 1  # the refused continuation called nothing and billed nothing


def test_store_false_keeps_nothing(app, client, account, upstream):
    upstream.add(responses.POST, CHAT_URL, json=COMPLETION)
    made = client.post(
        "/api/v1/responses", json={"model": "up:m", "input": "Hi", "store": False}, headers=account.headers
    )
    assert made.status_code == 200
    assert (
        client.get(f"/api/v1/responses/{made.get_json()['id']}", headers=account.headers).status_code == 404
    )
    with services(app).db.session_scope() as conn:
        assert conn.execute(select(stored_responses)).all() == []


def test_translated_stream_follows_the_grammar_and_is_stored_before_completed(app, client, account, upstream):
    raw = chat_stream(
        chunk({"role": "assistant", "content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2},
        },
    )
    upstream.add(responses.POST, CHAT_URL, body=raw, content_type="text/event-stream")
    resp = client.post(
        "/api/v1/responses", json={"model": "up:m", "input": "Hi", "stream": True}, headers=account.headers
    )
    assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
    out = resp.get_data()
    events = grammar.check_stream(out)
    assert events[-1]["type"] == "response.completed"
    assert sdk.stream_final(out).output_text == "Hello"
    response_id = events[-1]["response"]["id"]
    got = client.get(f"/api/v1/responses/{response_id}", headers=account.headers).get_json()
    assert got["output"][0]["content"][0]["text"] == "Hello"
    (row,) = rows(app)
    assert (row["prompt_tokens"], row["completion_tokens"], row["stream"]) == (4, 2, True)


def test_stream_cut_after_first_byte_ends_in_response_failed(app, client, account, upstream):
    raw = b"data: " + json.dumps(chunk({"role": "assistant", "content": "Hel"})).encode() + b"\n\n"
    upstream.add(responses.POST, CHAT_URL, body=raw, content_type="text/event-stream")
    resp = client.post(
        "/api/v1/responses", json={"model": "up:m", "input": "Hi", "stream": True}, headers=account.headers
    )
    events = grammar.check_stream(resp.get_data())
    assert [e["type"] for e in events[-2:]] == ["response.failed", "error"]
    (row,) = rows(app)
    assert row["outcome"] != "ok" and row["completion_tokens"] > 0


def test_native_whole_goes_up_as_sent_with_the_cap_and_continues_on_its_channel(
    app, client, account, upstream
):
    body = {
        "model": "oa:g",
        "input": "Hi",
        "include": ["reasoning.encrypted_content"],
        "max_output_tokens": 50,
    }
    upstream.add(
        responses.POST,
        NATIVE_URL,
        json=NATIVE,
        match=[matchers.json_params_matcher(dict(body, model="gpt-x"), strict_match=True)],
    )
    resp = client.post("/api/v1/responses", json=body, headers=account.headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == dict(NATIVE, model="oa:g")
    cont = {"model": "oa:g", "input": "More", "previous_response_id": "resp_upstream1"}
    upstream.add(
        responses.POST,
        NATIVE_URL,
        json=dict(NATIVE, id="resp_upstream2"),
        match=[
            matchers.json_params_matcher(
                {**cont, "model": "gpt-x", "max_output_tokens": 8192}, strict_match=True
            )
        ],
    )
    assert client.post("/api/v1/responses", json=cont, headers=account.headers).status_code == 200
    (one, two) = rows(app)
    assert (one["prompt_tokens"], one["completion_tokens"], one["cost_micros"]) == (7, 3, 13)


def test_native_response_continued_on_a_chat_upstream_sends_the_history(app, client, account, upstream):
    upstream.add(responses.POST, NATIVE_URL, json=NATIVE)
    client.post("/api/v1/responses", json={"model": "oa:g", "input": "Hi"}, headers=account.headers)
    upstream.add(responses.POST, CHAT_URL, json=COMPLETION)
    cont = {
        "model": "up:m",
        "input": "More",
        "previous_response_id": "resp_upstream1",
        "instructions": "New.",
    }
    assert client.post("/api/v1/responses", json=cont, headers=account.headers).status_code == 200
    messages = json.loads(upstream.calls[1].request.body)["messages"]
    assert messages == [
        {"role": "system", "content": "New."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": "Native hi"},
        {"role": "user", "content": [{"type": "text", "text": "More"}]},
    ]


def test_native_stream_is_relayed_and_billed_from_response_completed(app, client, account, upstream):
    created = {
        "type": "response.created",
        "sequence_number": 0,
        "response": dict(NATIVE, status="in_progress", output=[], usage=None),
    }
    done = {"type": "response.completed", "sequence_number": 1, "response": NATIVE}
    raw = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in (created, done))
    upstream.add(responses.POST, NATIVE_URL, body=raw, content_type="text/event-stream")
    resp = client.post(
        "/api/v1/responses", json={"model": "oa:g", "input": "Hi", "stream": True}, headers=account.headers
    )
    out = resp.get_data()
    assert b'"model": "oa:g"' in out or b'"model":"oa:g"' in out
    assert b"gpt-x" not in out
    (row,) = rows(app)
    assert (row["prompt_tokens"], row["completion_tokens"], row["stream"]) == (7, 3, True)
    got = client.get("/api/v1/responses/resp_upstream1", headers=account.headers)
    assert got.status_code == 200 and got.get_json()["model"] == "oa:g"


def test_expired_responses_are_invisible_and_purged(make_app, upstream):
    clock = FixedClock(datetime(2026, 1, 1, tzinfo=UTC))
    app = make_app(providers=PROVIDERS, clock=clock, response_retention_days=2)
    account = make_account(app, email="r@example.com", unlimited=True)
    client = app.test_client()
    upstream.add(responses.POST, CHAT_URL, json=COMPLETION)
    made = client.post("/api/v1/responses", json={"model": "up:m", "input": "Hi"}, headers=account.headers)
    response_id = made.get_json()["id"]
    clock.wall = clock.wall + timedelta(days=1)
    assert client.get(f"/api/v1/responses/{response_id}", headers=account.headers).status_code == 200
    clock.wall = clock.wall + timedelta(days=1, seconds=1)
    assert client.get(f"/api/v1/responses/{response_id}", headers=account.headers).status_code == 404
    assert services(app).responses.purge() == 1


def test_bad_requests_are_openai_400s_and_bill_nothing(app, client, account):
    assert_envelope(
        client.post("/api/v1/responses", json={"input": "Hi"}, headers=account.headers),
        400,
        "invalid_request",
        "model",
    )
    bad_tool = {"model": "up:m", "input": "Hi", "tools": [{"type": "computer_use_preview"}]}
    resp = client.post("/api/v1/responses", json=bad_tool, headers=account.headers)
    assert resp.status_code == 400
    assert rows(app) == []


def test_input_tokens_are_estimated_on_a_chat_upstream_and_relayed_on_a_native_one(
    app, client, account, upstream
):
    body = {"model": "up:m", "input": "Hello there, how are you?"}
    resp = client.post("/api/v1/responses/input_tokens", json=body, headers=account.headers)
    assert resp.status_code == 200 and resp.headers["X-Gateway-Estimated"] == "true"
    estimate = resp.get_json()
    assert estimate["object"] == "response.input_tokens" and estimate["input_tokens"] > 5
    counted = {"object": "response.input_tokens", "input_tokens": 12}
    upstream.add(
        responses.POST,
        "http://native.test/v1/responses/input_tokens",
        json=counted,
        match=[matchers.json_params_matcher({"model": "gpt-x", "input": "Hi"}, strict_match=True)],
    )
    resp = client.post(
        "/api/v1/responses/input_tokens", json={"model": "oa:g", "input": "Hi"}, headers=account.headers
    )
    assert resp.get_json() == counted and "X-Gateway-Estimated" not in resp.headers
    assert rows(app) == []  # counting is never billed


def test_compact_is_relayed_natively_and_billed_once_and_refused_elsewhere(app, client, account, upstream):
    compacted = {
        "id": "cmp_1",
        "object": "response.compaction",
        "created_at": 1,
        "output": [{"type": "compaction", "encrypted_content": "xyz"}],
        "usage": {"input_tokens": 30, "output_tokens": 4, "total_tokens": 34},
    }
    upstream.add(responses.POST, "http://native.test/v1/responses/compact", json=compacted)
    body = {"model": "oa:g", "input": [{"role": "user", "content": "long talk"}], "instructions": "x"}
    resp = client.post("/api/v1/responses/compact", json=body, headers=account.headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json() == compacted
    assert "max_output_tokens" not in json.loads(upstream.calls[0].request.body)
    (row,) = rows(app)
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost_micros"]) == (30, 4, 38)
    refused = client.post("/api/v1/responses/compact", json=dict(body, model="up:m"), headers=account.headers)
    assert_envelope(refused, 400, "unsupported_operation", "model")


class SteppedClock:
    """Wall and monotonic time that move only when the test moves them."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 1, 1, tzinfo=UTC)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def test_the_serving_process_deletes_expired_responses_itself(make_app, upstream):
    clock = SteppedClock()
    app = make_app(providers=PROVIDERS, clock=clock, response_retention_days=1)
    account = make_account(app, email="p@example.com", unlimited=True)
    client = app.test_client()
    for _ in range(3):
        upstream.add(responses.POST, CHAT_URL, json=COMPLETION)

    def kept() -> int:
        with services(app).db.session_scope() as conn:
            return len(conn.execute(select(stored_responses)).all())

    client.post("/api/v1/responses", json={"model": "up:m", "input": "one"}, headers=account.headers)
    clock.advance(2 * 86400)
    client.post("/api/v1/responses", json={"model": "up:m", "input": "two"}, headers=account.headers)
    assert kept() == 1, "the first, expired, went when the second was stored"
    clock.wall += timedelta(days=2)  # the second has expired, but the last purge ran 30 s ago...
    clock.mono += 30
    client.post("/api/v1/responses", json={"model": "up:m", "input": "three"}, headers=account.headers)
    assert kept() == 2, "...so it waits for the next purge"


def test_native_request_goes_up_without_service_tier(app, client, account, upstream):
    # A priority tier is charged at its own rate, which the model's prices do not price.
    body = {"model": "oa:g", "input": "Hi", "max_output_tokens": 50}
    upstream.add(
        responses.POST,
        NATIVE_URL,
        json=NATIVE,
        match=[matchers.json_params_matcher(dict(body, model="gpt-x"), strict_match=True)],
    )
    resp = client.post("/api/v1/responses", json=dict(body, service_tier="priority"), headers=account.headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)

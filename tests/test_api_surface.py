"""The rest of the OpenAI surface through the Flask app: embeddings, legacy completions, models, aliases.

Upstreams are `responses` at the HTTP boundary, with matchers on the exact request sent; every
billed request must leave exactly one usage row and no hold, on every path.
"""

from __future__ import annotations

import base64
import json
import struct

import pytest
import responses
from responses import matchers
from sqlalchemy import select

from gateway.store.tables import holds, usage_records
from tests.support.app import make_account, services

SECRET = "sk-upstream-secret-456"
PROVIDERS = {
    "up": {
        "type": "openai",
        "base_url": "http://upstream.test/v1",
        "api_key": SECRET,
        "models": {
            "emb": {"input_price": 2, "upstream_id": "text-embedding-3-small"},
            "m": {
                "input_price": 1,
                "output_price": 2,
                "cached_input_price": 0.5,
                "cache_write_price": 1.25,
                "context_length": 128000,
            },
            "org/with-slash": {},
        },
    },
    "claude": {
        "type": "anthropic",
        "base_url": "http://anthropic.test/v1",
        "api_key": SECRET,
        "models": {"sonnet": {"input_price": 3, "output_price": 15}},
    },
}
ALIASES = {"gpt": "up:m"}
VECTORS = [[0.5, -1.25, 3.0], [0.0, 1.0, 2.0]]


@pytest.fixture
def app(make_app):
    return make_app(providers=PROVIDERS, aliases=ALIASES)


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def rows(app) -> list[dict]:
    with services(app).db.session_scope() as conn:
        found = [dict(r) for r in conn.execute(select(usage_records)).mappings().all()]
        assert conn.execute(select(holds)).all() == [], "every hold is released"
    return found


def embeddings_reply(usage: bool = True) -> dict:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(VECTORS)]
    body = {"object": "list", "model": "text-embedding-3-small", "data": data}
    if usage:
        body["usage"] = {"prompt_tokens": 6, "total_tokens": 6}
    return body


def expect_embeddings(upstream, **reply) -> None:
    sent = {"model": "text-embedding-3-small", "input": ["a b c", "d e f"]}
    upstream.add(
        responses.POST,
        "http://upstream.test/v1/embeddings",
        match=[
            # encoding_format never goes upstream: not every compatible server has base64.
            matchers.json_params_matcher(sent, strict_match=True),
            matchers.header_matcher({"Authorization": f"Bearer {SECRET}"}),
        ],
        **reply,
    )


def test_embeddings_are_relayed_and_billed_on_input_tokens(app, client, account, upstream):
    expect_embeddings(upstream, json=embeddings_reply())
    resp = client.post(
        "/api/v1/embeddings", json={"model": "up:emb", "input": ["a b c", "d e f"]}, headers=account.headers
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["model"] == "up:emb"
    assert [d["embedding"] for d in body["data"]] == VECTORS
    (row,) = rows(app)
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost_micros"], row["estimated"]) == (
        6,
        0,
        12,
        False,
    )


def test_embeddings_in_base64_are_little_endian_float32(app, client, account, upstream):
    expect_embeddings(upstream, json=embeddings_reply())
    body = {"model": "up:emb", "input": ["a b c", "d e f"], "encoding_format": "base64"}
    resp = client.post("/api/v1/embeddings", json=body, headers=account.headers)
    encoded = resp.get_json()["data"][1]["embedding"]
    assert list(struct.unpack("<3f", base64.b64decode(encoded))) == VECTORS[1]


def test_embeddings_without_upstream_usage_are_estimated_from_the_request(app, client, account, upstream):
    expect_embeddings(upstream, json=embeddings_reply(usage=False))
    client.post(
        "/api/v1/embeddings", json={"model": "up:emb", "input": ["a b c", "d e f"]}, headers=account.headers
    )
    (row,) = rows(app)
    assert row["estimated"] is True and row["completion_tokens"] == 0 and row["prompt_tokens"] > 0


def test_embeddings_upstream_error_keeps_the_envelope_and_one_row(app, client, account, upstream):
    expect_embeddings(
        upstream, status=400, json={"error": {"message": "too long", "type": "invalid_request_error"}}
    )
    resp = client.post(
        "/api/v1/embeddings", json={"model": "up:emb", "input": ["a b c", "d e f"]}, headers=account.headers
    )
    assert resp.status_code == 400 and resp.get_json()["error"]["message"] == "too long"
    assert SECRET not in resp.get_data(as_text=True)
    assert [(r["status"], r["cost_micros"]) for r in rows(app)] == [(400, 0)]


@pytest.mark.parametrize(
    "body, param",
    [
        ({"input": "x"}, "model"),
        ({"model": "up:emb"}, "input"),
        ({"model": "up:emb", "input": []}, "input"),
        ({"model": "up:emb", "input": [1, "a"]}, "input"),
        ({"model": "up:emb", "input": [[]]}, "input"),
        ({"model": "up:emb", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"model": "up:emb", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "claude:sonnet", "input": "x"}, "model"),
    ],
    ids=["no-model", "no-input", "empty", "mixed", "empty-tokens", "format", "dimensions", "no-embeddings"],
)
def test_embeddings_validation_is_400_naming_the_param(app, client, account, body, param):
    resp = client.post("/api/v1/embeddings", json=body, headers=account.headers)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["param"] == param
    assert rows(app) == [], "nothing was billed"


def test_embeddings_need_a_key(client):
    resp = client.post("/api/v1/embeddings", json={"model": "up:emb", "input": "x"})
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "invalid_api_key"


def test_legacy_completions_are_relayed_and_billed(app, client, account, upstream):
    answer = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [{"text": " world", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
    }
    upstream.add(
        responses.POST,
        "http://upstream.test/v1/completions",
        match=[
            matchers.json_params_matcher(
                {"model": "m", "prompt": "hello", "max_tokens": 5}, strict_match=True
            )
        ],
        json=answer,
    )
    resp = client.post(
        "/api/v1/completions",
        json={"model": "up:m", "prompt": "hello", "max_tokens": 5},
        headers=account.headers,
    )
    assert resp.status_code == 200
    assert resp.get_json() == {**answer, "model": "up:m"}
    (row,) = rows(app)
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost_micros"]) == (2, 1, 4)


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": "up:m"}, "prompt"),
        ({"model": "up:m", "prompt": 5}, "prompt"),
        ({"model": "claude:sonnet", "prompt": "x"}, "model"),
    ],
)
def test_legacy_completions_validation(app, client, account, body, param):
    resp = client.post("/api/v1/completions", json=body, headers=account.headers)
    assert resp.status_code == 400 and resp.get_json()["error"]["param"] == param
    assert rows(app) == []


def test_models_list_has_prices_context_and_aliases(client, account):
    data = {m["id"]: m for m in client.get("/api/v1/models", headers=account.headers).get_json()["data"]}
    assert data["up:m"]["pricing"] == {
        "input": "1",
        "output": "2",
        "cached_input": "0.5",
        "cache_write": "1.25",
        "unit": "USD per million tokens",
    }
    assert data["up:m"]["context_length"] == 128000
    assert data["gpt"]["alias_for"] == "up:m"
    assert "pricing" not in data["mock:echo"]


@pytest.mark.parametrize("path", ["up:org/with-slash", "up:org%2Fwith-slash"])
def test_retrieve_model_accepts_literal_and_encoded_slashes(client, account, path):
    resp = client.get(f"/api/v1/models/{path}", headers=account.headers)
    assert resp.status_code == 200
    assert resp.get_json()["id"] == "up:org/with-slash"


def test_retrieve_model_by_alias_and_unknown(client, account):
    assert client.get("/api/v1/models/gpt", headers=account.headers).get_json()["alias_for"] == "up:m"
    resp = client.get("/api/v1/models/up:nope", headers=account.headers)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "model_not_found"


def test_retrieve_model_hides_models_the_key_may_not_use(app, client):
    limited = make_account(app, allowed_models=["up:m"])
    assert client.get("/api/v1/models/up:m", headers=limited.headers).status_code == 200
    assert client.get("/api/v1/models/claude:sonnet", headers=limited.headers).status_code == 404
    ids = {m["id"] for m in client.get("/api/v1/models", headers=limited.headers).get_json()["data"]}
    assert ids == {"up:m", "gpt"}


def test_chat_by_alias_is_billed_to_the_real_model(app, client, account, upstream):
    answer = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5},
    }
    upstream.add(responses.POST, "http://upstream.test/v1/chat/completions", json=answer)
    body = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
    resp = client.post("/api/v1/chat/completions", json=body, headers=account.headers)
    assert resp.get_json()["model"] == "up:m"
    (row,) = rows(app)
    assert (row["model"], row["cost_micros"]) == ("up:m", 6)


def test_a_field_anthropic_cannot_carry_is_a_400_with_one_row(app, client, account):
    body = {"model": "claude:sonnet", "messages": [{"role": "user", "content": "hi"}], "n": 3}
    resp = client.post("/api/v1/chat/completions", json=body, headers=account.headers)
    assert resp.status_code == 400 and resp.get_json()["error"]["param"] == "n"
    assert [(r["status"], r["outcome"]) for r in rows(app)] == [(400, "invalid_request")]


def test_anthropic_401_is_the_operators_502(app, client, account, upstream):
    upstream.add(
        responses.POST,
        "http://anthropic.test/v1/messages",
        status=401,
        json={"type": "error", "error": {"type": "authentication_error", "message": f"bad key {SECRET}"}},
        match=[matchers.header_matcher({"x-api-key": SECRET, "anthropic-version": "2023-06-01"})],
    )
    body = {"model": "claude:sonnet", "messages": [{"role": "user", "content": "hi"}]}
    resp = client.post("/api/v1/chat/completions", json=body, headers=account.headers)
    assert resp.status_code == 502
    error = resp.get_json()["error"]
    assert error["code"] == "upstream_auth_failed" and "'claude'" in error["message"]
    assert SECRET not in resp.get_data(as_text=True)
    assert json.loads(upstream.calls[0].request.body)["max_tokens"] == 4096

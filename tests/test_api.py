"""The /api/v1 surface through the Flask test client: auth, validation, routing, envelopes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from gateway.store.keys import revoke_key
from gateway.store.tables import usage_records
from tests.support.app import assert_envelope, chat, make_account, services


def usage_count(app) -> int:
    with services(app).db.session_scope() as conn:
        return conn.execute(select(func.count()).select_from(usage_records)).scalar_one()


def test_whole_answer_echoes_last_user_message_and_model(client, account):
    resp = client.post("/api/v1/chat/completions", json=chat(content="Say hi"), headers=account.headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "mock:echo"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "Say hi", "refusal": None}
    assert body["usage"]["completion_tokens"] == 2
    assert resp.headers["X-Request-Id"].startswith("req_")


def test_stream_relays_chunks_with_usage_on_final_chunk(client, account):
    resp = client.post(
        "/api/v1/chat/completions", json=chat(content="one two three", stream=True), headers=account.headers
    )
    assert resp.status_code == 200
    assert resp.mimetype == "text/event-stream"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["X-Accel-Buffering"] == "no"
    raw = resp.get_data()
    events = [e for e in raw.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    chunks = [json.loads(e[len(b"data: ") :]) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "one two three"
    assert all(c["model"] == "mock:echo" for c in chunks)
    assert all(c["choices"] for c in chunks), "a client that did not ask gets no empty-choices chunk"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert b"id:" not in raw


def test_stream_with_include_usage_gets_openai_shape(client, account):
    resp = client.post(
        "/api/v1/chat/completions",
        json=chat(stream=True, stream_options={"include_usage": True}),
        headers=account.headers,
    )
    events = [e for e in resp.get_data().split(b"\n\n") if e]
    usage_chunk = json.loads(events[-2][len(b"data: ") :])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["total_tokens"] > 0
    finish = json.loads(events[-3][len(b"data: ") :])
    assert finish["choices"][0]["finish_reason"] == "stop" and "usage" not in finish


def test_client_request_id_is_kept(client, account):
    resp = client.post(
        "/api/v1/chat/completions", json=chat(), headers={**account.headers, "X-Request-Id": "abc-12345678"}
    )
    assert resp.headers["X-Request-Id"] == "abc-12345678"


def test_insane_client_request_id_is_replaced(client, account):
    resp = client.post(
        "/api/v1/chat/completions",
        json=chat(),
        headers={**account.headers, "X-Request-Id": "bad id\twith spaces"},
    )
    assert resp.headers["X-Request-Id"].startswith("req_")


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic abc", "Bearer sk-short", "Bearer sk-" + "x" * 48, "bearer   sk-" + "y" * 48],
)
def test_bad_keys_are_401_invalid_api_key(client, header):
    headers = {} if header is None else {"Authorization": header}
    resp = client.post("/api/v1/chat/completions", json=chat(), headers=headers)
    body = assert_envelope(resp, 401, "invalid_api_key")
    assert body["error"]["type"] == "invalid_request_error"


def test_key_with_odd_spacing_and_case_is_accepted(client, account):
    resp = client.post(
        "/api/v1/chat/completions", json=chat(), headers={"Authorization": f"  bearer  {account.secret}  "}
    )
    assert resp.status_code == 200


def test_revoked_key_is_refused(app, client, account):

    with services(app).db.session_scope() as conn:
        assert revoke_key(conn, str(account.key_id)) == 1
    resp = client.post("/api/v1/chat/completions", json=chat(), headers=account.headers)
    assert_envelope(resp, 401, "invalid_api_key")


def test_expired_key_is_refused(app, client):
    from datetime import UTC, datetime, timedelta

    expired = make_account(app, expires_at=datetime.now(UTC) - timedelta(minutes=1))
    resp = client.post("/api/v1/chat/completions", json=chat(), headers=expired.headers)
    body = assert_envelope(resp, 401, "invalid_api_key")
    assert "expired" in body["error"]["message"]


def test_full_key_never_echoed_in_errors(client, account):
    bad = account.secret[:-4] + "zzzz"
    resp = client.post("/api/v1/chat/completions", json=chat(), headers={"Authorization": f"Bearer {bad}"})
    assert bad not in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    "body, param",
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "mock:echo"}, "messages"),
        ({"model": "mock:echo", "messages": []}, "messages"),
        ({"model": "mock:echo", "messages": "hi"}, "messages"),
        ({"model": "mock:echo", "messages": ["hi"]}, "messages[0]"),
        ({"model": "mock:echo", "messages": [{"content": "x"}]}, "messages[0]"),
        (chat(stream="yes"), "stream"),
        (chat(stream_options=[1]), "stream_options"),
        (chat(max_tokens=0), "max_tokens"),
        (chat(max_tokens="10"), "max_tokens"),
        (chat(max_completion_tokens=True), "max_completion_tokens"),
    ],
)
def test_invalid_bodies_are_400_naming_the_param(app, client, account, body, param):
    resp = client.post("/api/v1/chat/completions", json=body, headers=account.headers)
    assert_envelope(resp, 400, "invalid_request", param)
    assert usage_count(app) == 0


@pytest.mark.parametrize("data", [b"not json", b"[1,2]", b'"text"', b"\xff\xfe{}", b"[" * 100_000])
def test_unparseable_bodies_are_400(client, account, data):
    resp = client.post(
        "/api/v1/chat/completions", data=data, headers={**account.headers, "Content-Type": "application/json"}
    )
    assert_envelope(resp, 400, "invalid_request")


def test_wrong_content_type_is_415(client, account):
    resp = client.post(
        "/api/v1/chat/completions",
        data="model=x",
        headers={**account.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_envelope(resp, 415, "unsupported_media_type")


def test_oversize_body_is_413(make_app):
    app = make_app(max_body_bytes=1000)
    acct = make_account(app)
    resp = app.test_client().post(
        "/api/v1/chat/completions", json=chat(content="x" * 2000), headers=acct.headers
    )
    assert_envelope(resp, 413, "request_too_large")


@pytest.mark.parametrize("model", ["nope:echo", "mock:nope", "echo", "mock:", ":echo"])
def test_unknown_models_are_404_model_not_found(client, account, model):
    resp = client.post("/api/v1/chat/completions", json=chat(model=model), headers=account.headers)
    assert_envelope(resp, 404, "model_not_found", "model")


def test_key_limited_to_other_models_gets_403(app, client):
    acct = make_account(app, allowed_models=["other:model"])
    resp = client.post("/api/v1/chat/completions", json=chat(), headers=acct.headers)
    assert_envelope(resp, 403, "model_not_allowed", "model")


def test_unknown_path_and_wrong_method_use_the_envelope(client, account):
    assert_envelope(client.get("/api/v1/nothing"), 404, "not_found")
    assert_envelope(
        client.get("/api/v1/chat/completions", headers=account.headers), 405, "method_not_allowed"
    )


@pytest.mark.parametrize("stream", [False, True])
def test_unexpected_exception_is_500_envelope_not_html(app, client, account, monkeypatch, stream):
    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    # A bug inside the relay, after the hold was taken: the answer is our envelope, and the hold is
    # settled (a usage row, nothing left for the keeper to keep alive), not held until a restart.
    relay = services(app).relay
    monkeypatch.setattr(relay.upstream, "send", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = client.post("/api/v1/chat/completions", json=chat(stream=stream), headers=account.headers)
    body = assert_envelope(resp, 500, "internal_error")
    assert "kaboom" not in body["error"]["message"]
    assert relay.settlement.keeper.live() == set()
    with services(app).db.session_scope() as conn:
        assert conn.execute(select(usage_records.c.status, usage_records.c.outcome)).all() == [
            (500, "gateway_error")
        ]


def test_models_lists_provider_prefixed_ids(client, account):
    resp = client.get("/api/v1/models", headers=account.headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["object"] == "list"
    assert {"id": "mock:echo", "object": "model", "created": 0, "owned_by": "mock"} in body["data"]


def test_models_requires_a_key(client):
    assert_envelope(client.get("/api/v1/models"), 401, "invalid_api_key")


def test_every_answered_request_writes_one_usage_row(app, client, account):
    for stream in (False, True):
        resp = client.post("/api/v1/chat/completions", json=chat(stream=stream), headers=account.headers)
        resp.get_data()
    assert usage_count(app) == 2


def test_one_log_line_per_request_without_key_or_prompt(client, account, caplog):
    caplog.set_level("INFO", logger="gateway.access")
    resp = client.post(
        "/api/v1/chat/completions", json=chat(content="secret prompt words"), headers=account.headers
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["request_id"] == resp.headers["X-Request-Id"]
    assert entry["model"] == "mock:echo" and entry["status"] == 200 and entry["outcome"] == "ok"
    assert entry["key_prefix"] == account.secret[:10]
    assert account.secret not in lines[0] and "secret prompt" not in lines[0]

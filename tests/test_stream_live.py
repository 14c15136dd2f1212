"""Streams through a live gateway under gunicorn, against a real fake upstream on loopback.

What the Flask test client cannot show: chunks reaching the client while the upstream is still
producing, keep-alives relayed, and a client hang-up closing the upstream connection and being billed.
Each gateway serves one module's tests on one store (SQLite, then PostgreSQL); every test tells its
rows and upstream requests from the others' by its own request id and a marker in its prompt.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, create_engine, func, select

from gateway.config.settings import Settings
from gateway.store.tables import holds, usage_records
from tests.fakes.gateway_server import INPUT_PRICE, OUTPUT_PRICE, GatewayServer, run_gateway, store_url
from tests.fakes.sse_client import open_stream
from tests.fakes.upstream import MAX_SLOW_CHUNKS, MID_STREAM_ERROR, SECRET, FakeUpstream

Events = list[tuple[float, bytes]]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@dataclass(frozen=True)
class Live:
    gateway: GatewayServer
    upstream: FakeUpstream
    engine: Engine

    def usage_rows(self, request_id: str) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.execute(select(usage_records).where(usage_records.c.request_id == request_id)).all()

    def usage_row(self, request_id: str, timeout: float = 5.0) -> Any:
        """Wait for the request's usage row (settlement may finish after the last byte) and return it."""
        deadline = time.monotonic() + timeout
        rows = self.usage_rows(request_id)
        while not rows and time.monotonic() < deadline:
            time.sleep(0.02)
            rows = self.usage_rows(request_id)
        assert len(rows) == 1, f"{len(rows)} usage rows for {request_id}"
        return rows[0]

    def held(self, request_id: str) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).select_from(holds).where(holds.c.request_id == request_id)
            return conn.execute(query).scalar_one()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, upstream: FakeUpstream, tmp_path_factory) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp(f"live-{request.param}")
    with store_url(request.param, workdir) as url, run_gateway(workdir, url, upstream.url) as gateway:
        engine = create_engine(url)
        try:
            yield Live(gateway, upstream, engine)
        finally:
            engine.dispose()


def marker() -> str:
    return "m" + uuid.uuid4().hex[:12]


def chat(model: str, content: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def test_chunks_reach_the_client_while_the_upstream_is_still_producing(live):
    tag = marker()
    stream = open_stream(live.gateway, chat("fake:slow", tag, stream=True, max_tokens=30))
    ex = live.upstream.find(tag)
    assert ex.wait_done(5) and ex.outcome == "complete"
    contents = stream.contents()
    assert [text for _, text in contents] == ["w0"] + [f" w{i}" for i in range(1, 30)]
    # The upstream spends ~1.5 s on 30 chunks; a buffering relay would deliver them all at its end.
    assert contents[0][0] < ex.sent_at(b'"content":" w29"') - 0.5
    assert contents[-1][0] - contents[0][0] > 0.5
    for i, (arrived, text) in enumerate(contents):
        assert arrived - ex.sent_at(b'"content":"%s"' % text.encode()) < 1.0, f"chunk {i} was held back"
    assert stream.payloads[-1] == b"[DONE]"


def test_keep_alive_comments_are_relayed_as_they_come(live):
    tag = marker()
    stream = open_stream(live.gateway, chat("fake:keepalive", f"{tag} still here", stream=True))
    ex = live.upstream.find(tag)
    assert ex.wait_done(5) and ex.outcome == "complete"
    kinds = [event[:1] for _, event in stream.events]
    assert [event for _, event in stream.events if event.startswith(b":")] == [b": keep-alive"] * 3
    assert kinds[:3] == [b":"] * 3, "the comments come before any data, as the upstream sent them"
    assert stream.events[0][0] < ex.sent_at(b'"role":"assistant"'), "a comment waited for the data"
    assert stream.text == f"{tag} still here"
    assert stream.payloads[-1] == b"[DONE]"


def test_client_hang_up_closes_the_upstream_and_bills_what_was_relayed(live):
    tag = marker()
    stream = open_stream(
        live.gateway,
        chat("fake:slow", tag, stream=True),
        hang_up_when=lambda s: len(s.contents()) >= 3,
    )
    assert stream.status == 200 and stream.hung_up_at is not None
    ex = live.upstream.find(tag)
    assert ex.wait_done(5), "the upstream was still streaming 5 s after the client hung up"
    assert ex.outcome == "client_gone"
    # The gateway reads on for the usage event for drain_timeout, then closes.
    assert ex.client_gone_at - stream.hung_up_at < Settings.drain_timeout + 2.0
    assert len(ex.sent) < MAX_SLOW_CHUNKS // 2

    row = live.usage_row(stream.request_id)
    assert row.outcome == "client_disconnected"
    assert row.status == 200 and row.stream is True
    assert row.estimated is True  # the usage chunk never came
    received = sum(len(text.encode()) for _, text in stream.contents())
    assert row.completion_tokens >= math.ceil(received / 4), "tokens the client received went unbilled"
    assert row.cost_micros >= row.completion_tokens * OUTPUT_PRICE > 0
    assert live.held(stream.request_id) == 0, "the hold outlived the request"


def test_mid_stream_upstream_error_becomes_one_error_event_then_the_end(live):
    tag = marker()
    stream = open_stream(live.gateway, chat("fake:error-event", tag, stream=True))
    assert stream.status == 200
    assert stream.text == "partial answer", "what came before the error is relayed"
    payloads = stream.payloads
    errors = [i for i, p in enumerate(payloads) if p.startswith(b"{") and "error" in json.loads(p)]
    assert len(errors) == 1
    assert all(p == b"[DONE]" for p in payloads[errors[0] + 1 :]), "only [DONE] may follow the error"
    event = json.loads(payloads[errors[0]])
    assert set(event["error"]) == {"message", "type", "param", "code"}
    assert event["error"]["message"] == MID_STREAM_ERROR["message"]
    assert event["error"]["code"] == MID_STREAM_ERROR["code"]
    assert event["request_id"] == stream.request_id
    assert stream.tail == b""

    row = live.usage_row(stream.request_id)
    assert (row.outcome, row.status) == ("upstream_error", 200)
    assert row.cost_micros > 0, "the partial answer is billed"


@pytest.mark.parametrize(
    "model, code", [("cut", "upstream_connection_error"), ("truncated", "bad_upstream_response")]
)
def test_stream_ending_without_finish_reason_becomes_an_error_event(live, model, code):
    tag = marker()
    stream = open_stream(live.gateway, chat(f"fake:{model}", tag, stream=True))
    assert stream.status == 200
    assert live.upstream.find(tag).wait_done(5)
    payloads = stream.payloads
    assert b"[DONE]" not in payloads, "a cut-off answer must not look complete"
    last = json.loads(payloads[-1])
    assert last["error"]["code"] == code and last["error"]["type"] == "server_error"
    assert sum(1 for p in payloads if b'"error"' in p) == 1
    assert stream.tail == b""

    row = live.usage_row(stream.request_id)
    assert (row.outcome, row.status) == ("upstream_error", 200)
    assert row.estimated is True and row.cost_micros > 0


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    "model, status, code",
    [
        ("status-500", 500, "upstream_error"),
        ("status-503", 503, "upstream_error"),
        ("status-429", 429, "rate_limit_exceeded"),
        ("status-400", 400, "invalid_value"),
        ("status-401", 502, "upstream_auth_failed"),
    ],
)
def test_upstream_error_status_before_the_stream_is_that_status_with_the_envelope(
    live, model, status, code, stream
):
    tag = marker()
    resp = requests.post(
        live.gateway.api_base + "/chat/completions",
        headers=live.gateway.headers,
        json=chat(f"fake:{model}", tag, stream=stream),
        timeout=10,
    )
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert body["request_id"] == resp.headers["X-Request-Id"]
    assert SECRET not in resp.text and live.upstream.url not in resp.text
    if status == 429:
        assert resp.headers["Retry-After"] == "7"
    assert len(live.upstream.matching(tag)) == 1, "the gateway must not retry on its own"

    row = live.usage_row(resp.headers["X-Request-Id"])
    assert (row.outcome, row.status, row.cost_micros) == ("upstream_error", status, 0)


def test_successful_stream_is_well_framed_and_ends_with_done(live):
    tag = marker()
    stream = open_stream(live.gateway, chat("fake:chat", f"{tag} alpha beta gamma", stream=True))
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.headers["Cache-Control"] == "no-cache"
    assert stream.headers["X-Accel-Buffering"] == "no"
    assert stream.headers.get("Content-Length") is None, "a stream is not buffered to measure it"
    assert stream.raw.endswith(b"data: [DONE]\n\n") and stream.tail == b""
    for _, event in stream.events:
        assert event, "an empty event: a blank line too many"
        for line in event.split(b"\n"):
            assert line.startswith((b"data: ", b":")), f"unexpected line {line!r}"
    assert stream.payloads.count(b"[DONE]") == 1
    chunks = stream.chunks
    assert stream.text == f"{tag} alpha beta gamma"
    assert {c["model"] for c in chunks} == {"fake:chat"}
    ex = live.upstream.find(tag)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == ex.reported_usage["completion_tokens"]


def test_upstream_gets_the_provider_key_and_model_never_the_clients(live):
    tag = marker()
    open_stream(live.gateway, chat("fake:chat", tag, stream=True))
    ex = live.upstream.find(tag)
    assert ex.headers["authorization"] == f"Bearer {SECRET}"
    assert live.gateway.key.encode() not in ex.raw
    assert live.gateway.key not in json.dumps(ex.headers)
    assert ex.body["model"] == "chat"
    assert ex.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("given", [None, "live-test-1234abcd"])
def test_request_id_header_is_the_usage_rows_request_id(live, given):
    tag = marker()
    given = given and f"{given}-{tag}"
    headers = {"X-Request-Id": given} if given else {}
    stream = open_stream(live.gateway, chat("fake:chat", f"{tag} one two", stream=True), headers=headers)
    request_id = stream.headers["X-Request-Id"]
    assert (request_id == given) if given else request_id.startswith("req_")
    reported = live.upstream.find(tag).reported_usage
    row = live.usage_row(request_id)
    assert (row.outcome, row.status, row.estimated) == ("ok", 200, False)
    assert (row.prompt_tokens, row.completion_tokens) == (
        reported["prompt_tokens"],
        reported["completion_tokens"],
    )
    cost = row.prompt_tokens * INPUT_PRICE + row.completion_tokens * OUTPUT_PRICE
    assert row.cost_micros == math.ceil(cost)


def test_upstream_secret_and_client_key_never_reach_the_gateway_log(live):
    for model in ("status-500", "status-401", "error-event"):
        requests.post(
            live.gateway.api_base + "/chat/completions",
            headers=live.gateway.headers,
            json=chat(f"fake:{model}", marker(), stream=True),
            timeout=10,
        ).close()
    log = live.gateway.log_text()
    assert "status-500" in log or "upstream" in log, "the log is empty: this test would prove nothing"
    assert SECRET not in log
    assert live.gateway.key not in log


def test_the_usage_row_exists_once_the_client_has_the_error_event(live):
    """After an in-band error the gateway settles before sending the event: a client that stops
    reading there, as the openai SDK does, finds its usage row at once, without polling."""
    body = {"model": "fake:error-event", "stream": True, "messages": [{"role": "user", "content": "a b c"}]}
    url, headers = live.gateway.api_base + "/chat/completions", live.gateway.headers
    for _ in range(20):  # a settlement after the last event would lose this race some of the time
        with requests.post(url, json=body, headers=headers, stream=True, timeout=10) as resp:
            for line in resp.iter_lines():
                if line.startswith(b'data: {"error"'):
                    break  # stop here, before the body's end, like the SDK
            rows = live.usage_rows(resp.headers["X-Request-Id"])
            assert [row.outcome for row in rows] == ["upstream_error"]

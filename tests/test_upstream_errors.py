"""Upstream answers and failures through the whole app: statuses, envelopes, secrets and the usage row.

The upstream is `responses` at the HTTP boundary; its matchers assert the exact request the gateway
sends. Streams are only tested here up to the status line: real streaming needs a real server.
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import responses
from responses import matchers
from sqlalchemy import select

from gateway.providers.base import UpstreamRequest
from gateway.store.tables import holds, usage_records
from gateway.upstream.transport import Upstream
from tests.support.app import chat, make_account, services

SECRET = "sk-upstream-secret-123"
URL = "http://upstream.test/v1/chat/completions"
PROVIDERS = {
    "up": {
        "type": "openai",
        "base_url": "http://upstream.test/v1",
        "api_key": SECRET,
        "models": {"m": {"input_price": 1, "output_price": 2}},
    }
}
ANSWER = {
    "id": "chatcmpl-9",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    "system_fingerprint": "fp_9",
}


@pytest.fixture
def app(make_app):
    return make_app(providers=PROVIDERS)


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def expect(upstream, stream: bool = False, **reply) -> None:
    """Register the one upstream call, matching the exact body and headers the gateway must send."""
    # The held output cap (the default, 4096) always goes upstream.
    body = dict(chat(model="m"), stream=stream, max_tokens=4096)
    if stream:
        body["stream_options"] = {"include_usage": True}
    upstream.add(
        responses.POST,
        URL,
        match=[
            matchers.json_params_matcher(body, strict_match=True),
            matchers.header_matcher(
                {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
            ),
            matchers.query_string_matcher(""),
        ],
        **reply,
    )


def post(client, account, stream: bool = False):
    return client.post(
        "/api/v1/chat/completions", json=chat(model="up:m", stream=stream), headers=account.headers
    )


def only_usage_row(app) -> dict:
    with services(app).db.session_scope() as conn:
        rows = conn.execute(select(usage_records)).mappings().all()
        left = conn.execute(select(holds)).all()
    assert len(rows) == 1, rows
    assert left == [], "the hold must be released"
    return dict(rows[0])


def error_of(resp, status: int, code: str | None) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert body["request_id"] == resp.headers["X-Request-Id"]
    text = resp.get_data(as_text=True)
    assert SECRET not in text and "upstream.test" not in text
    return body["error"]


def assert_sent_once_without_secrets_in_the_url(upstream, account) -> None:
    (call,) = upstream.calls
    assert call.request.url == URL
    assert account.secret not in call.request.body.decode(), "the client's gateway key never goes upstream"


def test_whole_answer_passes_through_with_the_public_model(app, client, account, upstream):
    expect(upstream, json=ANSWER)
    resp = post(client, account)
    assert resp.status_code == 200
    assert resp.get_json() == {**ANSWER, "model": "up:m"}
    assert_sent_once_without_secrets_in_the_url(upstream, account)
    row = only_usage_row(app)
    assert (row["status"], row["outcome"], row["stream"], row["estimated"]) == (200, "ok", False, False)
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost_micros"]) == (9, 2, 9 * 1 + 2 * 2)
    assert row["model"] == "up:m"


def test_gzip_encoded_answer_reaches_the_client_decoded():
    # responses decodes bodies itself, so this needs a real (loopback) server to see what requests does.
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = gzip.compress(json.dumps(ANSWER).encode())
            self.send_response(200)
            for name, value in [("Content-Encoding", "gzip"), ("Content-Length", str(len(body)))]:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
        resp = Upstream().send(UpstreamRequest("up", url, (), b"{}", False, 5.0, 5.0, 5.0, 5.0))
        try:
            assert json.loads(resp.read(1 << 20)) == ANSWER
        finally:
            resp.close()
    finally:
        server.shutdown()
        server.server_close()


def test_upstream_400_keeps_its_status_and_message(app, client, account, upstream):
    error = {
        "message": "Unsupported parameter: 'foo' is not supported with this model.",
        "type": "invalid_request_error",
        "param": "foo",
        "code": "unsupported_parameter",
    }
    expect(upstream, status=400, json={"error": error})
    assert error_of(post(client, account), 400, "unsupported_parameter") == error
    row = only_usage_row(app)
    assert (row["status"], row["outcome"], row["cost_micros"]) == (400, "upstream_error", 0)


@pytest.mark.parametrize("status", [401, 402, 403])
def test_upstream_credential_failure_is_502_and_hides_the_upstream_text(
    app, client, account, upstream, status
):
    body = {"error": {"message": f"Incorrect API key provided: {SECRET}", "code": "invalid_api_key"}}
    expect(upstream, status=status, json=body)
    error = error_of(post(client, account), 502, "upstream_auth_failed")
    assert "Incorrect API key" not in error["message"]
    assert error["type"] == "server_error"
    row = only_usage_row(app)
    assert (row["status"], row["outcome"]) == (502, "upstream_error")


def test_upstream_rate_limit_passes_retry_after(app, client, account, upstream):
    body = {
        "error": {
            "message": "Rate limit reached for requests",
            "type": "requests",
            "code": "rate_limit_exceeded",
        }
    }
    expect(upstream, status=429, json=body, headers={"Retry-After": "7", "Retry-After-Ms": "6500"})
    resp = post(client, account)
    error = error_of(resp, 429, "rate_limit_exceeded")
    assert error["message"] == "Rate limit reached for requests"
    assert (resp.headers["Retry-After"], resp.headers["Retry-After-Ms"]) == ("7", "6500")
    assert (only_usage_row(app)["status"], only_usage_row(app)["outcome"]) == (429, "upstream_error")


@pytest.mark.parametrize("status", [500, 503])
def test_upstream_server_errors_pass_through_as_5xx(app, client, account, upstream, status):
    body = {
        "error": {"message": "The server had an error while processing your request.", "type": "server_error"}
    }
    expect(upstream, status=status, json=body)
    error = error_of(post(client, account), status, "upstream_error")
    assert (error["type"], error["message"]) == ("server_error", body["error"]["message"])
    assert only_usage_row(app)["status"] == status


def test_html_error_page_becomes_an_envelope(app, client, account, upstream):
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    expect(upstream, status=502, body=page, content_type="text/html")
    error = error_of(post(client, account), 502, "upstream_error")
    assert error["message"] == "Provider 'up' answered with HTTP 502."
    assert only_usage_row(app)["outcome"] == "upstream_error"


def test_refused_connection_is_502_upstream_connection_error(app, client, account, upstream):
    expect(upstream, body=requests.ConnectionError("[Errno 111] Connection refused: upstream.test:80"))
    error = error_of(post(client, account), 502, "upstream_connection_error")
    assert error["message"] == "The connection to provider 'up' failed."
    row = only_usage_row(app)
    assert (row["status"], row["outcome"], row["cost_micros"]) == (502, "upstream_error", 0)


@pytest.mark.parametrize("exc", [requests.ConnectTimeout, requests.ReadTimeout])
def test_upstream_timeouts_are_504(app, client, account, upstream, exc):
    expect(upstream, body=exc("timed out: http://upstream.test/v1"))
    error_of(post(client, account), 504, "upstream_timeout")
    row = only_usage_row(app)
    assert (row["status"], row["outcome"]) == (504, "timeout")


@pytest.mark.parametrize("body", ["not json at all", "", '{"id": "chatcmpl-1", "choices": [', "[1, 2, 3]"])
def test_unreadable_200_answer_is_502_bad_upstream_response(app, client, account, upstream, body):
    expect(upstream, body=body, content_type="application/json")
    error_of(post(client, account), 502, "bad_upstream_response")
    row = only_usage_row(app)
    assert (row["status"], row["outcome"]) == (502, "upstream_error")


def test_answer_larger_than_the_limit_is_refused(make_app, upstream):
    app = make_app(providers=PROVIDERS, max_upstream_body_bytes=1000)
    account = make_account(app)
    expect(upstream, json={**ANSWER, "padding": "x" * 2000})
    error_of(post(app.test_client(), account), 502, "bad_upstream_response")
    assert only_usage_row(app)["status"] == 502


@pytest.mark.parametrize(
    "reply, status, code, outcome",
    [
        (
            {"status": 401, "json": {"error": {"message": SECRET}}},
            502,
            "upstream_auth_failed",
            "upstream_error",
        ),
        (
            {"status": 429, "json": {}, "headers": {"Retry-After": "3"}},
            429,
            "rate_limit_exceeded",
            "upstream_error",
        ),
        ({"status": 503, "body": "<html>busy</html>"}, 503, "upstream_error", "upstream_error"),
        ({"body": requests.ConnectionError("refused")}, 502, "upstream_connection_error", "upstream_error"),
        ({"body": requests.ConnectTimeout("slow")}, 504, "upstream_timeout", "timeout"),
    ],
    ids=["auth", "rate-limit", "overloaded", "refused", "timeout"],
)
def test_stream_failing_before_its_first_byte_gets_a_json_error(
    app, client, account, upstream, reply, status, code, outcome
):
    expect(upstream, stream=True, **reply)
    resp = post(client, account, stream=True)
    error_of(resp, status, code)
    assert_sent_once_without_secrets_in_the_url(upstream, account)
    row = only_usage_row(app)
    assert (row["status"], row["outcome"], row["stream"], row["cost_micros"]) == (status, outcome, True, 0)

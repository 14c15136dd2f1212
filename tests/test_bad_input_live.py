"""Bad input against the real gateway under gunicorn: what the Flask test client cannot show.

Chunked uploads without a Content-Length, a declared length with no body behind it, and raw header
bytes that no client library would send, written straight to a socket.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.fakes.gateway_server import GatewayServer, run_gateway, store_url

LIMIT = 10_000
BOUND_S = 5.0  # every answer here comes in milliseconds; this only catches a hang
CHAT = "/api/v1/chat/completions"
BODY = json.dumps({"model": "mock:echo", "messages": [{"role": "user", "content": "hi"}]}).encode()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[GatewayServer]:
    workdir = tmp_path_factory.mktemp("bad_input_live")
    with store_url("sqlite", workdir) as url:
        with run_gateway(workdir, url, env={"GATEWAY_MAX_BODY_BYTES": str(LIMIT)}) as gw:
            yield gw


def _envelope(raw: bytes) -> dict:
    body = json.loads(raw)
    assert set(body) == {"error", "request_id"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body


def _still_serving(gw: GatewayServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=BOUND_S)
    try:
        conn.request("POST", CHAT, body=BODY, headers={**gw.headers, "Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()[:300]
        resp.read()
    finally:
        conn.close()


def _raw_exchange(gw: GatewayServer, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send raw request bytes, read the answer until the server closes or BOUND_S; return status, body."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=BOUND_S) as sock:
        sock.sendall(head + body)
        data = b""
        while time.monotonic() - started < BOUND_S:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0 and b"content-length:" in data[:head_end].lower():
                length = int(data[:head_end].lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(data) >= head_end + 4 + length:
                    break
    assert time.monotonic() - started < BOUND_S, "the gateway hung"
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def test_chunked_upload_over_the_limit_is_413_in_the_envelope(gateway):
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "mock:echo", "messages": [{"role": "user", "content": "'
        for _ in range(2 * LIMIT // 1000):
            yield b"x" * 1000
        yield b'"}]}'

    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=BOUND_S)
    try:
        conn.request(
            "POST",
            CHAT,
            body=chunks(),
            headers={**gateway.headers, "Content-Type": "application/json"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    assert resp.status == 413, raw[:300]
    assert _envelope(raw)["error"]["code"] == "request_too_large"
    _still_serving(gateway)


def test_chunked_upload_under_the_limit_is_served(gateway):
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=BOUND_S)
    try:
        conn.request(
            "POST",
            CHAT,
            body=iter([BODY[:10], BODY[10:]]),
            headers={**gateway.headers, "Content-Type": "application/json"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()[:300]
        resp.read()
    finally:
        conn.close()


def test_declared_length_over_the_limit_is_413_without_waiting_for_the_body(gateway):
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {gateway.key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {10**9}\r\nConnection: close\r\n\r\n"
    ).encode()
    status, body = _raw_exchange(gateway, head, b"{")
    assert status == 413, body[:300]
    assert _envelope(body)["error"]["code"] == "request_too_large"
    _still_serving(gateway)


@pytest.mark.parametrize(
    "header",
    [
        b"Authorization: Bearer sk-\x00abc",
        b"X-Request-Id: abc\x01defgh",
        b"X-Request-Id: abc\x7fdefgh",
        b"Content-Type: application/json\x00",
        b"X-Odd\x01Name: 1",
        b"X-Request-Id: abc\rdefgh",
    ],
    ids=["nul-auth", "soh-request-id", "del-request-id", "nul-content-type", "ctl-in-name", "bare-cr"],
)
def test_control_characters_in_headers_are_400_and_the_gateway_stays_up(gateway, header):
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(BODY)}\r\nConnection: close\r\n"
    ).encode()
    status, body = _raw_exchange(gateway, head + header + b"\r\n\r\n", BODY)
    assert status == 400, body[:300]
    # gunicorn refuses these before the app runs; gunicorn.conf.py makes its answer our envelope.
    assert _envelope(body)["error"]["code"] == "invalid_request"
    assert b"sk-" not in body, "the offending header is not echoed"
    _still_serving(gateway)


@pytest.mark.parametrize(
    "form, status",
    [(b"Bearer\t{}", 200), (b"bearer   {}", 200), (b"Bearer \t{}x", 401), (b"Bearer \xff{}", 401)],
)
def test_authorization_spacing_and_latin1_bytes_on_the_wire(gateway, form, status):
    auth = form.replace(b"{}", gateway.key.encode())
    head = (
        f"POST {CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\nConnection: close\r\n"
    ).encode()
    got, body = _raw_exchange(gateway, head + b"Authorization: " + auth + b"\r\n\r\n", BODY)
    assert got == status, body[:300]
    if status >= 400:
        assert _envelope(body)["error"]["code"] == "invalid_api_key"


def test_invalid_utf8_and_deep_json_on_the_wire_are_400(gateway):
    for raw in (
        b'{"model": "mock:echo", "messages": "\xff"}',
        b"[" * 5000,
        b'{"a":' * 1500 + b"1" + b"}" * 1500,
    ):
        head = (
            f"POST {CHAT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {gateway.key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\nConnection: close\r\n\r\n"
        ).encode()
        status, body = _raw_exchange(gateway, head, raw)
        assert status == 400, body[:300]
        _envelope(body)
    _still_serving(gateway)

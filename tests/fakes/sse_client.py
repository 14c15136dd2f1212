"""A raw HTTP client for SSE answers: each event with the moment it arrived, and hang-ups on demand."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.gateway_server import GatewayServer

Events = list[tuple[float, bytes]]


@dataclass
class Stream:
    """What a raw HTTP client saw: each SSE event with the moment its last byte arrived."""

    status: int
    headers: http.client.HTTPMessage
    raw: bytes = b""
    events: Events = field(default_factory=list)
    tail: bytes = b""  # bytes after the last blank line: an unterminated event
    hung_up_at: float | None = None

    @property
    def request_id(self) -> str:
        return self.headers["X-Request-Id"]

    @property
    def payloads(self) -> list[bytes]:
        return [e[len(b"data: ") :] for _, e in self.events if e.startswith(b"data: ")]

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.payloads if p != b"[DONE]"]

    def contents(self) -> list[tuple[float, str]]:
        """Return (arrival, text) of every content delta."""
        out = []
        for at, event in self.events:
            if event.startswith(b"data: {"):
                for choice in json.loads(event[len(b"data: ") :]).get("choices") or ():
                    text = choice.get("delta", {}).get("content")
                    if text:
                        out.append((at, text))
        return out

    @property
    def text(self) -> str:
        return "".join(text for _, text in self.contents())


def open_stream(
    gateway: GatewayServer,
    body: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    hang_up_when: Callable[[Stream], bool] | None = None,
    timeout: float = 15.0,
) -> Stream:
    """POST a chat completion and read the answer as it arrives, optionally hanging up mid-stream."""
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            "/api/v1/chat/completions",
            body=json.dumps(body),
            headers={**gateway.headers, "Content-Type": "application/json", **(headers or {})},
        )
        sock = conn.sock
        resp = conn.getresponse()
        stream = Stream(resp.status, resp.headers)
        deadline = time.monotonic() + timeout
        buf = b""
        for _ in range(100_000):
            assert time.monotonic() < deadline, "the stream did not end in time"
            data = resp.read1(65536)
            now = time.monotonic()
            if not data:
                break
            stream.raw += data
            buf += data
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                stream.events.append((now, event))
            if hang_up_when is not None and hang_up_when(stream):
                sock.shutdown(socket.SHUT_RDWR)
                stream.hung_up_at = time.monotonic()
                break
        stream.tail = buf
        return stream
    finally:
        conn.close()

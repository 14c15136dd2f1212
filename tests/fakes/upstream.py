"""A fake OpenAI-compatible upstream on 127.0.0.1 with real sockets, so tests can see timing and hang-ups.

The upstream model id in the request body picks the behaviour:

    chat          echo the last user message, one word a chunk; a usage chunk if include_usage is set
    slow          one chunk every 50 ms: max_tokens chunks (at most 400, so at most ~20 s)
    keepalive     three ': keep-alive' comments 200 ms apart, then as chat
    cut           two content chunks, then the socket closes mid-body (no finish_reason, no [DONE])
    truncated     two content chunks, then a clean end of body without finish_reason or [DONE]
    error-event   two content chunks, then data: {"error": {...}}, then data: [DONE]
    status-NNN    HTTP NNN with an OpenAI error envelope (429 also sends retry-after)
    (any other)   'partial answer', finished normally

Every request is recorded as an Exchange, with what was written and when, and with the moment the
client went away (a write failed, or the socket was found closed), which is what disconnect tests need.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "sk-fake-upstream-secret"
TICK = 0.05  # seconds between chunks of the slow model
KEEPALIVE_GAP = 0.2
MAX_SLOW_CHUNKS = 400
STREAM_DEADLINE = 25.0  # no fake stream outlives this, whatever the client asks
MAX_EXCHANGES = 1000
MAX_BODY = 1 << 20
MODELS = (
    "chat",
    "slow",
    "keepalive",
    "cut",
    "truncated",
    "error-event",
    "status-400",
    "status-401",
    "status-429",
    "status-500",
    "status-503",
)
MID_STREAM_ERROR = {
    "message": "The fake upstream is overloaded mid-stream.",
    "type": "server_error",
    "param": None,
    "code": "fake_overloaded",
}


@dataclass
class Exchange:
    """One request the fake received, and what became of it (times are time.monotonic())."""

    path: str
    headers: dict[str, str]  # names lower-cased
    raw: bytes
    body: Any
    received_at: float
    sent: list[tuple[float, bytes]] = field(default_factory=list)  # each SSE event written, and when
    reported_usage: dict[str, int] | None = None
    billed: Any = None  # the script's Billed, for requests openai_flavours answered
    client_gone_at: float | None = None
    finished_at: float | None = None
    outcome: str | None = None  # complete | client_gone | cut | stopped | error_status
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def model(self) -> str:
        return self.body.get("model", "") if isinstance(self.body, dict) else ""

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True

    def sent_at(self, needle: bytes) -> float:
        """Return when the first event containing needle was written."""
        for at, event in self.sent:
            if needle in event:
                return at
        raise AssertionError(f"the fake upstream never sent {needle!r}")

    def wait_done(self, timeout: float) -> bool:
        return self.done.wait(timeout)


def _words(body: dict[str, Any]) -> list[str]:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content.split() if isinstance(content, str) else []
    return []


def _usage(body: dict[str, Any], completion: int) -> dict[str, int]:
    prompt = 3 + sum(
        len(m["content"].split()) + 3
        for m in body.get("messages") or []
        if isinstance(m, dict) and isinstance(m.get("content"), str)
    )
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _event(data: Any) -> bytes:
    payload = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return b"data: " + payload + b"\n\n"


class _Stopped(Exception):
    """The fake is shutting down, or the stream ran past its deadline."""


class _ClientGone(Exception):
    """The client (the gateway) closed the connection while we were streaming."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like a real provider
    timeout = 30  # idle keep-alive connections do not hold a thread for ever
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle adds ~40 ms to each answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._closed(self.connection)

    def do_GET(self) -> None:
        self._send_json(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._send_json(413, {"error": {"message": "body too large", "type": "invalid_request_error"}})
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        exchange = Exchange(
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            raw=raw,
            body=body,
            received_at=time.monotonic(),
        )
        if not self.server.fake._record(exchange):
            self._send_json(503, {"error": {"message": "fake upstream request budget spent"}})
            return
        try:
            self._answer(exchange)
        finally:
            exchange.finished_at = time.monotonic()
            exchange.done.set()

    def _answer(self, ex: Exchange) -> None:
        from tests.fakes import openai_flavours

        flavour = openai_flavours.flavour_of(self.path)
        scripted = isinstance(ex.body, dict) and (ex.model.startswith("script") or ex.body.get("tools"))
        if isinstance(ex.body, dict) and flavour is not None and (flavour != "openai" or scripted):
            # The same-script conversation (tests/fakes/script.py), and the DeepSeek and Azure paths.
            openai_flavours.answer(self, ex, flavour, time.monotonic() + STREAM_DEADLINE)
            return
        if self.path != "/v1/chat/completions" or not isinstance(ex.body, dict):
            ex.outcome = "error_status"
            self._send_json(404, {"error": {"message": f"nothing at {self.path}", "type": "not_found"}})
            return
        model = ex.model
        if model.startswith("status-") and model[7:].isdigit():
            ex.outcome = "error_status"
            self._send_error_status(int(model[7:]), ex)
            return
        if not ex.stream:
            words = _words(ex.body)
            ex.reported_usage = _usage(ex.body, len(words))
            self._send_json(200, self._completion(model, " ".join(words), ex.reported_usage))
            ex.outcome = "complete"
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + STREAM_DEADLINE
        try:
            self._stream(ex, deadline)
        except _ClientGone:
            ex.outcome = "client_gone"
            self.close_connection = True
        except _Stopped:
            ex.outcome = "stopped"
            self.close_connection = True

    def _stream(self, ex: Exchange, deadline: float) -> None:
        body, model = ex.body, ex.model
        include_usage = (body.get("stream_options") or {}).get("include_usage") is True
        if model == "slow":
            cap = body.get("max_tokens") or body.get("max_completion_tokens") or MAX_SLOW_CHUNKS
            words = [f"w{i}" for i in range(min(int(cap), MAX_SLOW_CHUNKS))]
        elif model in ("chat", "keepalive"):
            words = _words(body)
        else:
            words = ["partial", "answer"]
        if model == "keepalive":
            for _ in range(3):
                self._write(ex, b": keep-alive\n\n", deadline)
                self._pause(ex, KEEPALIVE_GAP, deadline)
        self._write(ex, _event(self._chunk(model, {"role": "assistant", "content": ""})), deadline)
        for i, word in enumerate(words):
            if model == "slow" and i:
                self._pause(ex, TICK, deadline)
            self._write(ex, _event(self._chunk(model, {"content": word if i == 0 else " " + word})), deadline)
        if model == "cut":
            # Drop the connection with the chunked body unfinished: what a crashed provider looks like.
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            ex.outcome = "cut"
            return
        if model == "error-event":
            self._write(ex, _event({"error": MID_STREAM_ERROR}), deadline)
        elif model != "truncated":
            self._write(ex, _event(self._chunk(model, {}, "stop")), deadline)
            ex.reported_usage = _usage(body, len(words))
            if include_usage:
                usage_chunk = dict(self._chunk(model, {}), choices=[], usage=ex.reported_usage)
                self._write(ex, _event(usage_chunk), deadline)
        if model != "truncated":
            self._write(ex, _event(b"[DONE]"), deadline)
        self._end_body()
        ex.outcome = "complete"

    def _chunk(self, model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def _completion(self, model: str, text: str, usage: dict[str, int]) -> dict[str, Any]:
        message = {"role": "assistant", "content": text, "refusal": None}
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": usage,
        }

    def _send_error_status(self, status: int, ex: Exchange) -> None:
        # The message quotes the key it was sent, as some providers do: the gateway must not pass it on.
        key = ex.headers.get("authorization", "")
        error = {
            "message": f"Fake upstream answered {status} for key {key}.",
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "param": None,
            "code": {400: "invalid_value", 429: "rate_limit_exceeded"}.get(status),
        }
        headers = {"retry-after": "7"} if status == 429 else {}
        self._send_json(status, {"error": error}, headers)

    def _send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _pause(self, ex: Exchange, seconds: float, deadline: float) -> None:
        if self.server.fake._stopping.wait(seconds) or time.monotonic() > deadline:
            raise _Stopped()
        if self._peer_closed():
            raise self._gone(ex)

    def _write(self, ex: Exchange, event: bytes, deadline: float) -> None:
        if self.server.fake._stopping.is_set() or time.monotonic() > deadline:
            raise _Stopped()
        if self._peer_closed():
            raise self._gone(ex)
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        except OSError as exc:
            raise self._gone(ex) from exc
        ex.sent.append((time.monotonic(), event))

    def _end_body(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _peer_closed(self) -> bool:
        # Mid-response an HTTP/1.1 client sends nothing, so a readable socket means EOF or reset.
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _gone(self, ex: Exchange) -> _ClientGone:
        if ex.client_gone_at is None:
            ex.client_gone_at = time.monotonic()
        return _ClientGone()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # socketserver's default backlog of 5 refuses bursts of connections
    fake: FakeUpstream


class FakeUpstream:
    """Start with start() or a with block; stop() ends every stream and closes every connection."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL a provider config points at, with /v1 like OpenAI's."""
        assert self._server is not None, "the fake upstream is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeUpstream:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(5)
        self._server = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def matching(self, marker: str) -> list[Exchange]:
        """Return the exchanges whose request body contains marker."""
        needle = marker.encode()
        with self._lock:
            return [ex for ex in self.exchanges if needle in ex.raw]

    def find(self, marker: str, timeout: float = 5.0) -> Exchange:
        """Wait for the one exchange whose request body contains marker, and return it."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(marker)
            if found:
                assert len(found) == 1, f"{len(found)} upstream requests carry {marker!r}"
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no upstream request carried {marker!r} within {timeout} s")
            time.sleep(0.01)

    def _record(self, exchange: Exchange) -> bool:
        with self._lock:
            if len(self.exchanges) >= MAX_EXCHANGES:
                return False
            self.exchanges.append(exchange)
            return True

    def _opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

"""The loopback HTTP server every fake upstream runs on: 127.0.0.1, a free port, real sockets.

A fake subclasses LoopbackServer and writes its answers in handle(handler, exchange); this module
owns the rest: the listening thread, start and stop, TCP_NODELAY, the bounded log of Exchanges, and
the streaming writes that notice when the client (the gateway) has gone away.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

MAX_BODY = 1 << 20
MAX_EXCHANGES = 1000
STREAM_DEADLINE = 25.0  # no fake stream outlives this, whatever the client asks


@dataclass
class Exchange:
    """One request a fake received, and what became of it (times are time.monotonic())."""

    path: str
    headers: dict[str, str]  # names lower-cased
    raw: bytes
    body: Any
    received_at: float
    sent: list[tuple[float, bytes]] = field(default_factory=list)  # each write of the body, and when
    reported_usage: dict[str, int] | None = None  # the usage the fake put in its answer
    billed: Any = None  # the script's Billed, for fakes that play tests/fakes/script.py
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
        """Return when the first write containing needle was made."""
        for at, event in self.sent:
            if needle in event:
                return at
        raise AssertionError(f"the fake upstream never sent {needle!r}")

    def wait_done(self, timeout: float) -> bool:
        return self.done.wait(timeout)


def data_event(data: Any) -> bytes:
    """Encode one SSE data event: JSON in its compact form, or bytes as they are."""
    payload = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    return b"data: " + payload + b"\n\n"


class Stopped(Exception):
    """The fake is shutting down, or the stream ran past its deadline."""


class ClientGone(Exception):
    """The client (the gateway) closed the connection while the fake was streaming."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like a real provider
    timeout = 30  # idle keep-alive connections do not hold a thread for ever
    server: _Server
    exchange: Exchange
    deadline: float

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
        self.send_json(404, {"error": {"message": "no such path", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self.send_json(413, {"error": {"message": "body too large", "type": "invalid_request_error"}})
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        ex = Exchange(self.path, headers, raw, body, received_at=time.monotonic())
        fake = self.server.fake
        if not fake.record(ex):
            self.send_json(503, {"error": {"message": "fake upstream request budget spent"}})
            return
        self.exchange, self.deadline = ex, ex.received_at + STREAM_DEADLINE
        try:
            fake.handle(self, ex)
        except ClientGone:
            ex.outcome = "client_gone"
            self.close_connection = True
        except Stopped:
            ex.outcome = "stopped"
            self.close_connection = True
        finally:
            ex.finished_at = time.monotonic()
            ex.done.set()

    def send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write(self, data: bytes) -> None:
        """Write one chunk of a chunked body as it is (an OSError means the client went away)."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.exchange.sent.append((time.monotonic(), data))

    def send_event(self, event: bytes) -> None:
        """Write one event, unless the fake is stopping, the deadline passed or the client left.

        :raises Stopped: the fake is stopping or the stream is past its deadline
        :raises ClientGone: the client closed its end, before or during the write
        """
        self._check()
        try:
            self.write(event)
        except OSError as exc:
            raise self._gone() from exc

    def pause(self, seconds: float) -> None:
        """Wait between events, noticing a stop, the deadline and a client that left meanwhile."""
        if self.server.fake.stopping.wait(seconds):
            raise Stopped()
        self._check()

    def end_stream(self) -> None:
        try:
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _check(self) -> None:
        if self.server.fake.stopping.is_set() or time.monotonic() > self.deadline:
            raise Stopped()
        if self._peer_closed():
            raise self._gone()

    def _peer_closed(self) -> bool:
        # Mid-response an HTTP/1.1 client sends nothing, so a readable socket means EOF or reset.
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _gone(self) -> ClientGone:
        if self.exchange.client_gone_at is None:
            self.exchange.client_gone_at = time.monotonic()
        return ClientGone()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # socketserver's default backlog of 5 refuses bursts of connections
    fake: LoopbackServer


class LoopbackServer:
    """Start with start() or a with block; stop() ends every stream and closes every connection."""

    prefix = ""  # the path the provider's base URL ends with, e.g. /v1

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL a provider config points at."""
        assert self._server is not None, "the fake upstream is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def start(self) -> Self:
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # ends every pause, hang and stall at once
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle(self, handler: Handler, ex: Exchange) -> None:
        """Answer one recorded request."""
        raise NotImplementedError

    def record(self, ex: Exchange) -> bool:
        """Log the exchange; False once the log is full (the fake then answers 503)."""
        with self._lock:
            if len(self.exchanges) >= MAX_EXCHANGES:
                return False
            self.exchanges.append(ex)
            return True

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

    def _opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

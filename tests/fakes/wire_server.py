"""A loopback HTTP server for fakes of providers with their own wire formats (Anthropic, Gemini).

Subclasses implement handle(handler, exchange); the handler writes JSON or a chunked SSE body.
Every request is recorded as a WireExchange, with the Billed usage the fake reported.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.script import Billed

MAX_BODY = 1 << 20
MAX_EXCHANGES = 1000


@dataclass
class WireExchange:
    path: str
    headers: dict[str, str]  # names lower-cased
    raw: bytes
    body: Any
    billed: Billed | None = None


class WireHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, MAX_BODY))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        ex = WireExchange(self.path, {k.lower(): v for k, v in self.headers.items()}, raw, body)
        if not self.server.fake.record(ex):
            self.send_json(503, {"error": {"message": "fake request budget spent"}})
            return
        self.server.fake.handle(self, ex)

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
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64
    fake: WireServer


class WireServer:
    """Start with a with block; url is the base URL a provider config points at."""

    prefix = ""  # the path the provider's base URL ends with, e.g. /v1

    def __init__(self) -> None:
        self.exchanges: list[WireExchange] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.prefix}"

    def __enter__(self) -> WireServer:
        self._server = _Server(("127.0.0.1", 0), WireHandler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def record(self, ex: WireExchange) -> bool:
        with self._lock:
            if len(self.exchanges) >= MAX_EXCHANGES:
                return False
            self.exchanges.append(ex)
            return True

    def find(self, marker: str) -> WireExchange:
        """Return the one exchange whose request body contains marker."""
        with self._lock:
            found = [ex for ex in self.exchanges if marker.encode() in ex.raw]
        assert len(found) == 1, f"{len(found)} requests carry {marker!r}"
        return found[0]

    def handle(self, handler: WireHandler, ex: WireExchange) -> None:
        raise NotImplementedError

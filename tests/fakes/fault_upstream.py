"""A fake OpenAI-compatible upstream that fails in one chosen way, on 127.0.0.1 with real sockets.

The upstream model id picks the fault, streamed or not (the request's "stream" field):

    ok            a normal answer: "fine", usage 10 prompt + 5 completion tokens
    hang          reads the request, then never answers
    status-500    HTTP 500 with an OpenAI error envelope
    status-429    HTTP 429, retry-after: 1
    status-401    HTTP 401: the gateway's key is refused
    invalid-json  200, but the body (or the first stream event) is not JSON
    cut-mid-line  stream: one content event, then half an event and the socket closes;
                  whole: half the Content-Length body, then the socket closes
    no-done       stream: a finished answer with usage, ended without data: [DONE];
                  whole: the complete JSON in a chunked body never terminated (socket closes)
    stall         stream: one content event, then silence; whole: half the body, then silence
    error-event   stream: one content event, then data: {"error": ...}; whole: 200 with an error body
    error-first   stream: data: {"error": ...} before any content; whole: as error-event
    drip          stream: one content event, then the rest one byte per 100 ms; whole: all of it so
"""

from __future__ import annotations

import json
import socket
from typing import Any

from tests.fakes.loopback import Exchange, Handler, LoopbackServer, data_event

SILENCE = 10.0  # hang and stall last at most this long, or until the fake stops
DRIP_GAP = 0.1
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
ERROR = {"message": "The fake upstream failed on purpose.", "type": "server_error", "code": "fake_failure"}
FAULTS = (
    "hang",
    "status-500",
    "status-429",
    "status-401",
    "invalid-json",
    "cut-mid-line",
    "no-done",
    "stall",
    "error-event",
    "error-first",
    "drip",
)


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choices = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return dict(id="chatcmpl-fault", object="chat.completion.chunk", created=1, model=model, choices=choices)


def _completion(model: str) -> bytes:
    message = {"role": "assistant", "content": "fine"}
    choices = [{"index": 0, "message": message, "finish_reason": "stop"}]
    body = dict(id="chatcmpl-fault", object="chat.completion", created=1, model=model, choices=choices)
    body["usage"] = USAGE
    return json.dumps(body).encode()


def _stream(model: str) -> list[bytes]:
    """The events of a whole, well-formed answer."""
    return [
        data_event(_chunk(model, {"role": "assistant", "content": ""})),
        data_event(_chunk(model, {"content": "fine"})),
        data_event(_chunk(model, {}, "stop")),
        data_event(dict(_chunk(model, {}), choices=[], usage=USAGE)),
        data_event(b"[DONE]"),
    ]


class FaultUpstream(LoopbackServer):
    prefix = "/v1"

    def count(self, fault: str) -> int:
        """How many requests for this fault arrived."""
        with self._lock:
            return sum(
                1 for ex in self.exchanges if isinstance(ex.body, dict) and ex.body.get("model") == fault
            )

    def handle(self, handler: Handler, ex: Exchange) -> None:
        body = ex.body if isinstance(ex.body, dict) else {}
        fault, stream = str(body.get("model", "")), body.get("stream") is True
        try:
            if fault.startswith("status-"):
                status = int(fault[7:])
                headers = {"retry-after": "1"} if status == 429 else {}
                handler.send_json(status, {"error": ERROR}, headers)
            elif stream:
                self._stream(handler, fault)
            else:
                self._whole(handler, fault)
        except OSError:
            handler.close_connection = True  # the gateway hung up, as it should on a timeout

    def _whole(self, h: Handler, fault: str) -> None:
        full = _completion(fault)
        if fault == "hang":
            self._silence(h)
        elif fault == "invalid-json":
            self._raw(
                h, b'{"id": "chatcmpl-fault", "choices": [', len(b'{"id": "chatcmpl-fault", "choices": [')
            )
        elif fault in ("error-event", "error-first"):
            h.send_json(200, {"error": ERROR})
        elif fault == "cut-mid-line":
            self._raw(h, full[: len(full) // 2], len(full))
            self._cut(h)
        elif fault == "no-done":
            h.start_stream()  # a chunked body
            h.write(full)
            self._cut(h)
        elif fault == "stall":
            self._raw(h, full[: len(full) // 2], len(full))
            self._silence(h)
        elif fault == "drip":
            self._raw(h, b"", len(full))
            self._drip(h, full, chunked=False)
        else:
            self._raw(h, full, len(full))

    def _stream(self, h: Handler, fault: str) -> None:
        events = _stream(fault)
        if fault == "hang":
            self._silence(h)
            return
        h.start_stream()
        if fault == "invalid-json":
            h.write(b"data: {not json}\n\n")
        elif fault == "error-first":
            h.write(data_event({"error": ERROR}))
        else:
            h.write(events[0] + events[1])  # the role and the first words: the client has bytes now
            rest = b"".join(events[2:])
            if fault == "cut-mid-line":
                h.write(rest[:25])
                self._cut(h)
                return
            if fault == "no-done":
                h.write(b"".join(events[2:4]))
            elif fault == "stall":
                self._silence(h)
                return
            elif fault == "error-event":
                h.write(data_event({"error": ERROR}) + events[4])
            elif fault == "drip":
                self._drip(h, rest, chunked=True)
            else:
                h.write(rest)
        h.end_stream()

    def _raw(self, h: Handler, data: bytes, length: int) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(length))
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    def _drip(self, h: Handler, data: bytes, chunked: bool) -> None:
        for i in range(len(data)):
            if self.stopping.wait(DRIP_GAP):
                return
            h.write(data[i : i + 1]) if chunked else h.wfile.write(data[i : i + 1])

    def _silence(self, h: Handler) -> None:
        self.stopping.wait(SILENCE)
        h.close_connection = True

    def _cut(self, h: Handler) -> None:
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

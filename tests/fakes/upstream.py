"""A fake OpenAI-compatible upstream on 127.0.0.1 with real sockets, so tests can see timing and hang-ups.

The upstream model id in the request body picks the behaviour:

    chat          echo the last user message, one word a chunk; a usage chunk if include_usage is set
    slow          one chunk every 50 ms: max_tokens chunks (at most 400, so at most ~20 s)
    flood         FLOOD_CHUNKS chunks of FLOOD_WORD as fast as the socket takes them (~8 MB)
    keepalive     three ': keep-alive' comments 200 ms apart, then as chat
    cut           two content chunks, then the socket closes mid-body (no finish_reason, no [DONE])
    truncated     two content chunks, then a clean end of body without finish_reason or [DONE]
    error-event   two content chunks, then data: {"error": {...}}, then data: [DONE]
    status-NNN    HTTP NNN with an OpenAI error envelope (429 also sends retry-after)
    (any other)   'partial answer', finished normally

Every request is recorded as an Exchange (tests/fakes/loopback.py), with what was written and when, and
with the moment the client went away (a write failed, or the socket was found closed), which is what
disconnect tests need. Requests for models named script*, or with tools, or on the DeepSeek and Azure
paths, are answered by tests/fakes/openai_flavours.py.
"""

from __future__ import annotations

import socket
from typing import Any

from tests.fakes import openai_flavours
from tests.fakes.loopback import Exchange, Handler, LoopbackServer, data_event

SECRET = "sk-fake-upstream-secret"
TICK = 0.05  # seconds between chunks of the slow model
KEEPALIVE_GAP = 0.2
MAX_SLOW_CHUNKS = 400
FLOOD_CHUNKS = 2000  # with FLOOD_WORD: more than every socket buffer between here and a client
FLOOD_WORD = "x" * 4000
MODELS = (
    "chat",
    "slow",
    "flood",
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


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _completion(model: str, text: str, usage: dict[str, int]) -> dict[str, Any]:
    message = {"role": "assistant", "content": text, "refusal": None}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage,
    }


class FakeUpstream(LoopbackServer):
    """The base URL ends with /v1, like OpenAI's."""

    prefix = "/v1"

    def handle(self, handler: Handler, ex: Exchange) -> None:
        flavour = openai_flavours.flavour_of(handler.path)
        scripted = isinstance(ex.body, dict) and (ex.model.startswith("script") or ex.body.get("tools"))
        if isinstance(ex.body, dict) and flavour is not None and (flavour != "openai" or scripted):
            # The same-script conversation (tests/fakes/script.py), and the DeepSeek and Azure paths.
            openai_flavours.answer(handler, ex, flavour)
            return
        if handler.path != "/v1/chat/completions" or not isinstance(ex.body, dict):
            ex.outcome = "error_status"
            handler.send_json(404, {"error": {"message": f"nothing at {handler.path}", "type": "not_found"}})
            return
        model = ex.model
        if model.startswith("status-") and model[7:].isdigit():
            ex.outcome = "error_status"
            self._send_error_status(handler, int(model[7:]), ex)
            return
        if not ex.stream:
            words = _words(ex.body)
            ex.reported_usage = _usage(ex.body, len(words))
            handler.send_json(200, _completion(model, " ".join(words), ex.reported_usage))
            ex.outcome = "complete"
            return
        handler.start_stream()
        self._stream(handler, ex)

    def _stream(self, h: Handler, ex: Exchange) -> None:
        body, model = ex.body, ex.model
        include_usage = (body.get("stream_options") or {}).get("include_usage") is True
        if model == "slow":
            cap = body.get("max_tokens") or body.get("max_completion_tokens") or MAX_SLOW_CHUNKS
            words = [f"w{i}" for i in range(min(int(cap), MAX_SLOW_CHUNKS))]
        elif model == "flood":
            words = [FLOOD_WORD] * FLOOD_CHUNKS
        elif model in ("chat", "keepalive"):
            words = _words(body)
        else:
            words = ["partial", "answer"]
        if model == "keepalive":
            for _ in range(3):
                h.send_event(b": keep-alive\n\n")
                h.pause(KEEPALIVE_GAP)
        h.send_event(data_event(_chunk(model, {"role": "assistant", "content": ""})))
        for i, word in enumerate(words):
            if model == "slow" and i:
                h.pause(TICK)
            h.send_event(data_event(_chunk(model, {"content": word if i == 0 else " " + word})))
        if model == "cut":
            # Drop the connection with the chunked body unfinished: what a crashed provider looks like.
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            ex.outcome = "cut"
            return
        if model == "error-event":
            h.send_event(data_event({"error": MID_STREAM_ERROR}))
        elif model != "truncated":
            h.send_event(data_event(_chunk(model, {}, "stop")))
            ex.reported_usage = _usage(body, len(words))
            if include_usage:
                h.send_event(data_event(dict(_chunk(model, {}), choices=[], usage=ex.reported_usage)))
        if model != "truncated":
            h.send_event(data_event(b"[DONE]"))
        h.end_stream()
        ex.outcome = "complete"

    def _send_error_status(self, h: Handler, status: int, ex: Exchange) -> None:
        # The message quotes the key it was sent, as some providers do: the gateway must not pass it on.
        key = ex.headers.get("authorization", "")
        error = {
            "message": f"Fake upstream answered {status} for key {key}.",
            "type": "server_error" if status >= 500 else "invalid_request_error",
            "param": None,
            "code": {400: "invalid_value", 429: "rate_limit_exceeded"}.get(status),
        }
        headers = {"retry-after": "7"} if status == 429 else {}
        h.send_json(status, {"error": error}, headers)

"""The mock:// transport: an OpenAI-compatible upstream inside the process, for the built-in mock provider.

`mock:echo` answers with the last user message; streamed, it sends one chunk a word. It honours
max_tokens (finish_reason "length") and reports usage, so billing works exactly as with a real upstream.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from gateway.providers.base import UpstreamRequest
from gateway.providers.chunks import dumps
from gateway.upstream.response import UpstreamResponse


class MockTransport:
    """Answers mock:// requests without a network."""

    def send(self, req: UpstreamRequest) -> UpstreamResponse:
        status, headers, chunks = respond(req)
        return UpstreamResponse(
            req.provider, status, headers, lambda timeout: next(chunks, b""), lambda eof: None
        )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def respond(request: UpstreamRequest) -> tuple[int, dict[str, str], Iterator[bytes]]:
    """Answer one upstream request as an OpenAI-compatible server would."""
    body = json.loads(request.body)
    messages = body.get("messages") or []
    user_text = next(
        (
            _text(m.get("content"))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    words = user_text.split()
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    finish = "stop"
    if isinstance(cap, int) and 0 < cap < len(words):
        words, finish = words[:cap], "length"
    prompt = sum(len(_text(m.get("content")).split()) + 3 for m in messages if isinstance(m, dict))
    usage = {"prompt_tokens": prompt, "completion_tokens": len(words), "total_tokens": prompt + len(words)}
    head = {
        "id": "chatcmpl-mock-" + uuid.uuid4().hex[:24],
        "created": int(time.time()),
        "model": body.get("model", "echo"),
    }
    if not request.stream:
        message = {"role": "assistant", "content": " ".join(words), "refusal": None}
        answer = dict(
            head,
            object="chat.completion",
            usage=usage,
            choices=[{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        )
        return 200, {"Content-Type": "application/json"}, iter([dumps(answer)])
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return (
        200,
        {"Content-Type": "text/event-stream"},
        _stream(head, words, finish, usage if include_usage else None),
    )


def _stream(
    head: dict[str, Any], words: list[str], finish: str, usage: dict[str, int] | None
) -> Iterator[bytes]:
    def chunk(delta: dict[str, Any], reason: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return (
            b"data: " + dumps(dict(head, object="chat.completion.chunk", choices=[choice], **extra)) + b"\n\n"
        )

    yield chunk({"role": "assistant", "content": ""})
    for i, word in enumerate(words):
        yield chunk({"content": word if i == 0 else " " + word})
    yield chunk({}, finish)
    if usage is not None:
        yield b"data: " + dumps(dict(head, object="chat.completion.chunk", choices=[], usage=usage)) + b"\n\n"
    yield b"data: [DONE]\n\n"

"""OpenAI chat.completion chunks and bodies, built by the translators of other wire formats."""

from __future__ import annotations

import json
from typing import Any

from gateway.providers.base import Usage
from gateway.providers.events import DONE, encode_data


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def usage_object(usage: Usage) -> dict[str, Any]:
    """Return OpenAI's usage object, with the cache and reasoning details when there are any."""
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
    if usage.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    if usage.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def completion_body(
    completion_id: str,
    created: int,
    model: str,
    choices: list[dict[str, Any]],
    usage: Usage | None,
) -> bytes:
    """Return a whole chat.completion body."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage_object(usage)
    return dumps(body)


def message(
    content: str | None, tool_calls: list[dict[str, Any]], reasoning: str | None = None
) -> dict[str, Any]:
    """Return an assistant message; content is null only when there are tool calls and no text."""
    out: dict[str, Any] = {
        "role": "assistant",
        "content": content if content or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        out["tool_calls"] = tool_calls
    if reasoning:
        out["reasoning_content"] = reasoning
    return out


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


class ChunkWriter:
    """Writes one stream's chunks: same id, created and model in each, usage exactly once at the end.

    A client that sent stream_options.include_usage gets OpenAI's own last chunk with empty
    choices; one that did not gets usage on the chunk that carries finish_reason.
    """

    def __init__(self, model: str, client_usage: bool) -> None:
        self.model = model
        self.client_usage = client_usage
        self.id = ""
        self.created = 0
        self.started = False

    def start(self, completion_id: str, created: int) -> list[bytes]:
        """Return the first chunk, with the assistant role, once per stream."""
        if self.started:
            return []
        self.id, self.created, self.started = completion_id, created, True
        return [self.delta({"role": "assistant", "content": ""})]

    def delta(self, delta: dict[str, Any], index: int = 0) -> bytes:
        return self._chunk([{"index": index, "delta": delta, "logprobs": None, "finish_reason": None}])

    def end(self, finish_reasons: dict[int, str], usage: Usage | None) -> list[bytes]:
        """Return the finishing chunk of each choice, the usage and [DONE]."""
        out = []
        last = max(finish_reasons, default=None)
        for index, reason in sorted(finish_reasons.items()):
            choice = {"index": index, "delta": {}, "logprobs": None, "finish_reason": reason}
            with_usage = usage if index == last and not self.client_usage else None
            out.append(self._chunk([choice], with_usage))
        if self.client_usage and usage is not None:
            out.append(self._chunk([], usage))
        return out + [DONE]

    def _chunk(self, choices: list[dict[str, Any]], usage: Usage | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage_object(usage)
        return encode_data(dumps(chunk))

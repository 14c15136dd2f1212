"""Anthropic's whole Messages answers as OpenAI chat completions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import UpstreamProtocolError
from gateway.providers import chunks
from gateway.providers.anthropic.mapping import FINISH, error_from, usage_from
from gateway.providers.base import Completion


def parse_message(
    raw: bytes,
    public_model: str,
    provider: ProviderConfig,
    clock: Callable[[], float],
    new_id: Callable[[], str],
) -> Completion:
    """Return the chat completion for a Messages answer; an error body raises its error."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        if isinstance(data, dict) and data.get("type") == "error":
            raise error_from(provider, data, 502)
        raise UpstreamProtocolError(f"Provider '{provider.name}' sent a response that is not a message.")
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for block in data["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = chunks.dumps(block.get("input") or {}).decode()
            calls.append(chunks.tool_call(block.get("id", ""), block.get("name", ""), arguments))
        elif kind in ("thinking", "redacted_thinking"):
            reasoning.append(block.get("thinking") or "")
            thinking.append(block)
    message = chunks.message("".join(texts), calls, "".join(reasoning))
    if thinking:
        message["thinking_blocks"] = thinking
    finish = FINISH.get(data.get("stop_reason") or "", "stop")
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    usage = usage_from(data.get("usage"))
    ident = str(data.get("id") or "msg_" + new_id())
    return Completion(
        body=chunks.completion_body(ident, int(clock()), public_model, [choice], usage), usage=usage
    )

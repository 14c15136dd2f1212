"""What the whole answer and the stream share: stop reasons, usage, tool input and event framing."""

from __future__ import annotations

import json
import uuid
from typing import Any

from gateway.providers.anthropic.native import UNSIGNED_PREFIX
from gateway.providers.base import Usage, token_count

# finish_reason -> stop_reason. A plain "stop" becomes stop_sequence only when the upstream names
# the sequence it hit (see matched_stop); anything unknown is a natural end of turn.
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# Set in place of the input when a model's tool arguments are not a JSON object, so the client's
# schema check fails loudly with the model's own text in view instead of running the tool with {}.
RAW_ARGUMENTS = "_raw_arguments"


def dict_of(value: Any) -> dict[str, Any]:
    """Return value when it is a JSON object, else an empty one: upstream chunks come in many shapes."""
    return value if isinstance(value, dict) else {}


def list_of(value: Any) -> list[Any]:
    """Return value when it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def event(payload: dict[str, Any]) -> bytes:
    """Frame one Anthropic event: its type is both the event name and the data's type."""
    return b"event: " + payload["type"].encode() + b"\ndata: " + dumps(payload) + b"\n\n"


def message_id(upstream_id: Any) -> str:
    """Return a msg_ id for the message, derived from the upstream's completion id when there is one."""
    text = upstream_id if isinstance(upstream_id, str) and upstream_id else uuid.uuid4().hex[:24]
    return text if text.startswith("msg_") else "msg_" + text


def unsigned_signature(msg_id: str) -> str:
    """Return the signature given to reasoning no Anthropic model signed.

    The SDKs want every thinking block to carry a signature. The prefix lets the native relay drop
    these blocks before a conversation reaches Anthropic, which would reject them as forged.
    """
    return UNSIGNED_PREFIX + msg_id


def matched_stop(choice: dict[str, Any]) -> str | None:
    """Return the stop sequence the upstream says it hit: vLLM's stop_reason, SGLang's matched_stop."""
    for name in ("stop_reason", "matched_stop"):
        value = choice.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def stop_reason(finish: Any, stop_sequence: str | None, tool_use: bool) -> str:
    """Map a finish_reason to Anthropic's stop_reason; tool calls win over a provider's plain stop."""
    if tool_use and finish in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"
    if finish == "stop" and stop_sequence is not None:
        return "stop_sequence"
    return STOP_REASONS.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"


def usage_from(raw: Any) -> Usage | None:
    """Read a canonical usage object: OpenAI's fields, DeepSeek's cache hits, any cache writes."""
    if not isinstance(raw, dict) or not ("prompt_tokens" in raw or "completion_tokens" in raw):
        return None
    prompt_details = dict_of(raw.get("prompt_tokens_details"))
    output_details = dict_of(raw.get("completion_tokens_details"))
    return Usage(
        prompt_tokens=token_count(raw, "prompt_tokens"),
        completion_tokens=token_count(raw, "completion_tokens"),
        cached_tokens=token_count(prompt_details, "cached_tokens")
        or token_count(raw, "prompt_cache_hit_tokens"),
        reasoning_tokens=token_count(output_details, "reasoning_tokens"),
        cache_write_tokens=token_count(prompt_details, "cache_write_tokens")
        or token_count(raw, "cache_creation_input_tokens"),
    )


def anthropic_usage(usage: Usage | None) -> dict[str, int]:
    """Return Anthropic's usage object: input_tokens excludes what was read from or written to a cache."""
    usage = usage or Usage()
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    return {
        "input_tokens": usage.prompt_tokens - cached - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": usage.completion_tokens,
    }


def tool_input(arguments: Any) -> dict[str, Any]:
    """Parse a tool call's arguments; empty ones are {}, anything else not an object is kept as text."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except (ValueError, RecursionError):
        value = None
    return value if isinstance(value, dict) else {RAW_ARGUMENTS: arguments}

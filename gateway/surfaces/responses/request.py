"""A Responses request as a canonical chat-completions body (tools and text.format in tools.py).

Top-level fields are translated, dropped or refused, never passed on blindly:
- translated: model, input, instructions (a leading system message, never taken from history),
  tools, tool_choice, parallel_tool_calls, text.format (response_format), reasoning.effort
  (reasoning_effort), max_output_tokens (max_completion_tokens), temperature, top_p, metadata,
  user (safety_identifier when user is absent), stream (with stream_options.include_usage).
- dropped, being hints for OpenAI's own serving (storage, caching, tiers): store, include (so
  no encrypted reasoning comes back), prompt_cache_key, prompt_cache_retention,
  prompt_cache_options, client_metadata, service_tier, stream_options, max_tool_calls (it caps
  hosted tools only), text.verbosity, reasoning.summary, background false, top_logprobs 0; and
  truncation and context_management, so an input past the context fails upstream, visibly,
  instead of being trimmed. previous_response_id is the caller's: it passes the chain as history.
- refused with a 400 naming the field, because ignoring them would change the answer: background
  true, background_options, conversation, prompt, moderation, top_logprobs above 0, access_programs,
  image, and any field this module does not know.
Input items are read in items.py.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequestError
from gateway.surfaces.responses import tools
from gateway.surfaces.responses.items import messages_of, normalise_input

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
TRANSLATED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "top_p",
        "metadata",
        "user",
        "safety_identifier",
        "stream",
        "previous_response_id",
    }
)
DROPPED = frozenset(
    {
        "store",
        "include",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "client_metadata",
        "service_tier",
        "truncation",
        "stream_options",
        "max_tool_calls",
        "context_management",
    }
)
# Refused unless null (or false, or 0): each would change what the answer is.
REFUSED = frozenset(
    {"background", "background_options", "conversation", "prompt", "moderation", "access_programs", "image"}
)


def to_canonical(body: Any, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return the canonical chat body for a Responses request, history items first.

    :raises InvalidRequestError: for anything malformed, or that chat cannot carry.
    """
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    _check_fields(body)
    out: dict[str, Any] = {}
    if body.get("model") is not None:
        out["model"] = _string(body, "model")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequestError("'instructions' must be a string.", param="instructions")
        if instructions:
            messages.append({"role": "system", "content": instructions})
    earlier = [item for item in history or () if isinstance(item, dict)]
    items = [(item, f"history[{i}]") for i, item in enumerate(earlier)]
    items += [(item, f"input[{i}]") for i, item in enumerate(normalise_input(body.get("input")))]
    messages += messages_of(items)
    if not messages:
        raise InvalidRequestError("'input' is required.", param="input")
    out["messages"] = messages
    tools.translate(body, out)
    fmt = tools.response_format(body.get("text"))
    if fmt is not None:
        out["response_format"] = fmt
    _sampling(body, out)
    if body.get("stream") is not None:
        if not isinstance(body["stream"], bool):
            raise InvalidRequestError("'stream' must be a boolean.", param="stream")
        if body["stream"]:
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}
    return out


def _check_fields(body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name in TRANSLATED or name in DROPPED:
            continue
        if name == "top_logprobs" and value in (None, 0):
            continue
        if name in REFUSED or name == "top_logprobs":
            if value is None or value is False:
                continue
            raise InvalidRequestError(f"'{name}' is not supported on this model.", param=name)
        raise InvalidRequestError(f"Unknown parameter: '{name}'.", param=name)


def _sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidRequestError(f"'{name}' must be a non-negative number.", param=name)
        out[name] = value
    cap = body.get("max_output_tokens")
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise InvalidRequestError(
                "'max_output_tokens' must be a positive integer.", param="max_output_tokens"
            )
        out["max_completion_tokens"] = cap
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise InvalidRequestError("'reasoning' must be an object.", param="reasoning")
        effort = reasoning.get("effort")
        if effort is not None and effort not in EFFORTS:
            raise InvalidRequestError(
                f"'reasoning.effort' must be one of {', '.join(EFFORTS)}.", param="reasoning.effort"
            )
        if effort is not None:
            out["reasoning_effort"] = effort
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise InvalidRequestError("'metadata' must be an object of strings.", param="metadata")
        out["metadata"] = metadata
    for name in ("user", "safety_identifier"):
        if body.get(name) is not None:
            out.setdefault("user", _string(body, name))


def _string(body: dict[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{name}' must be a string.", param=name)
    return value

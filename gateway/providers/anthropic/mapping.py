"""What Anthropic's Messages API and OpenAI's chat format share: stop reasons, usage and errors.

The facts used here are in docs/wire-formats.md#anthropic-messages-upstream.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import UpstreamError
from gateway.providers.base import Usage, token_count, upstream_error
from gateway.providers.openai import error_fields

# stop_reason -> finish_reason (docs/wire-formats.md#anthropic-stop-reasons); anything unknown is a stop.
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
    "pause_turn": "stop",
}


# Error types that mean the gateway's own key or account failed, whatever the status.
CREDENTIAL_TYPES = {"authentication_error", "billing_error", "permission_error"}


STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 503,
}


def usage_from(raw: Any) -> Usage | None:
    """Read Anthropic usage: every input count is prompt; cache reads and writes are parts of it."""
    if not isinstance(raw, dict):
        return None

    cache_read = token_count(raw, "cache_read_input_tokens")
    cache_write = token_count(raw, "cache_creation_input_tokens")
    return Usage(
        prompt_tokens=token_count(raw, "input_tokens") + cache_write + cache_read,
        completion_tokens=token_count(raw, "output_tokens"),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


# The relay's estimate when usage never came (relay/pricing.estimate_tokens): 4 bytes of text a token.
BYTES_PER_TOKEN = 4


def cut_usage(started: Usage, relayed_bytes: int) -> Usage:
    """Return the usage of a stream that has not reached message_delta (yet): cut, or still going.

    message_start's input counts are exact, but its output_tokens is a placeholder (1), so the
    output is estimated from the text relayed so far, and the usage is marked estimated. Without
    this, a client that hangs up mid-answer would be billed one output token for all it received.
    """
    relayed = -(-relayed_bytes // BYTES_PER_TOKEN)
    return replace(started, completion_tokens=max(started.completion_tokens, relayed), estimated=True)


def error_from(provider: ProviderConfig, data: Any, status: int) -> UpstreamError:
    """Normalise Anthropic's {"type":"error","error":{type,message}} into ours."""
    message, kind, _, _ = error_fields(data)
    # Old accounts without credit got a 400 about the credit balance instead of a 402.
    credential = kind in CREDENTIAL_TYPES or "credit balance" in (message or "").lower()
    if status == 529 or kind == "overloaded_error":
        return upstream_error(provider, 503, message, "server_error", "upstream_overloaded")
    if status == 502 and kind in STATUS_BY_TYPE:  # an in-band error: its type says what it was
        status = STATUS_BY_TYPE[kind]
    code = {404: "not_found", 413: "request_too_large"}.get(status)
    return upstream_error(provider, status, message, None, code, None, credential=credential)

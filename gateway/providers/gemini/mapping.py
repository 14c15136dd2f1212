"""What Gemini's generateContent and OpenAI's chat format share: finish reasons, usage, parts, errors.

Gemini 3's thought signatures must go back with their function calls, and plain OpenAI messages
cannot carry them: they ride in the tool-call id, after SIGNATURE, which every client echoes unchanged.
The facts used here are in docs/wire-formats.md#gemini-generatecontent-upstream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import UpstreamError
from gateway.providers import chunks
from gateway.providers.base import Usage, token_count, upstream_error

SIGNATURE = "#ts:"


FILTERED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
}


CREDENTIAL_REASONS = {"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"}


def finish_reason(reason: Any, has_calls: bool) -> str:
    """Map a Gemini finishReason (docs/wire-formats.md#gemini-finish-reasons)."""
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if has_calls else "stop"


def usage_from(raw: Any) -> Usage | None:
    """Read usageMetadata: thoughts are completion tokens, cached content is part of the prompt."""
    if not isinstance(raw, dict):
        return None

    thoughts = token_count(raw, "thoughtsTokenCount")
    return Usage(
        prompt_tokens=token_count(raw, "promptTokenCount") + token_count(raw, "toolUsePromptTokenCount"),
        completion_tokens=token_count(raw, "candidatesTokenCount") + thoughts,
        cached_tokens=token_count(raw, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def call_id(base: str, signature: Any) -> str:
    """Return the OpenAI tool-call id, carrying the thought signature when there is one."""
    return base + SIGNATURE + signature if isinstance(signature, str) and signature else base


def parts_to_message(parts: Any, new_id: Callable[[], str]) -> tuple[str, str, list[dict[str, Any]]]:
    """Return the text, the reasoning and the tool calls of a candidate's parts."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, dict):
            base = str(call.get("id") or "call_" + new_id())
            arguments = chunks.dumps(call.get("args") or {}).decode()
            calls.append(
                chunks.tool_call(call_id(base, part.get("thoughtSignature")), call.get("name", ""), arguments)
            )
    return "".join(texts), "".join(thoughts), calls


def error_from(provider: ProviderConfig, data: Any, status: int) -> UpstreamError:
    """Normalise Google's {"error":{code,message,status,details}}; a bad key is a 400 there."""
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    reasons = {d.get("reason") for d in error.get("details") or () if isinstance(d, dict)}
    name = error.get("status") if isinstance(error.get("status"), str) else None
    if status == 502 and isinstance(error.get("code"), int) and 400 <= error["code"] <= 599:
        status = error["code"]  # an error inside a 200 stream: its own code says what it was
    credential = bool(reasons & CREDENTIAL_REASONS) or name in ("UNAUTHENTICATED", "PERMISSION_DENIED")
    code = name.lower() if name and 400 <= status < 500 and status != 429 else None
    message = error.get("message") if isinstance(error.get("message"), str) else None
    return upstream_error(provider, status, message, None, code, None, credential=credential)

"""An upper estimate of a Responses request's input tokens, for /v1/responses/input_tokens.

Used where the upstream cannot count itself, so it errs high: a caller that budgets its context
on it must not overflow. It counts the canonical form of the request (what the upstream sees):
- text: one token per 3 ASCII characters (English runs near 4, code near 3), and one per
  character for everything else (CJK, Cyrillic, emoji: often one or more tokens each);
- 4 tokens of framing per message and 3 to prime the reply, as OpenAI's cookbook counts chat;
- images: 1,600 tokens each, about the most a tiled or patched image costs on current models,
  85 when detail is low;
- files: a token per 4 bytes of the decoded file, since their pages are unknown until parsed;
- tools and the response schema: their JSON, counted as text, plus 8 tokens per tool.
"""

from __future__ import annotations

import json
import math
from typing import Any

from gateway.surfaces.responses.request import to_canonical

MESSAGE_TOKENS = 4
REPLY_TOKENS = 3
TOOL_TOKENS = 8
IMAGE_TOKENS = 1600
LOW_DETAIL_IMAGE_TOKENS = 85
FILE_BYTES_PER_TOKEN = 4


def estimate_input_tokens(body: dict[str, Any], history: list[dict[str, Any]] | None = None) -> int:
    """Return a conservative count of the input tokens of a Responses request.

    :raises InvalidRequestError: for a request to_canonical refuses.
    """
    canonical = to_canonical(body, history)
    total = REPLY_TOKENS
    for message in canonical["messages"]:
        total += MESSAGE_TOKENS + _message_tokens(message)
    for tool in canonical.get("tools", ()):
        total += TOOL_TOKENS + text_tokens(json.dumps(tool["function"], ensure_ascii=False))
    if "response_format" in canonical:
        total += text_tokens(json.dumps(canonical["response_format"], ensure_ascii=False))
    return total


def input_tokens_object(body: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Return the answer of /v1/responses/input_tokens."""
    return {"object": "response.input_tokens", "input_tokens": estimate_input_tokens(body, history)}


def text_tokens(text: str) -> int:
    """Return the estimate for one string: ASCII at 3 characters a token, the rest one each."""
    ascii_chars = sum(1 for char in text if char < "\x80")
    return math.ceil(ascii_chars / 3) + len(text) - ascii_chars


def _message_tokens(message: dict[str, Any]) -> int:
    total = 0
    for name in ("content", "refusal", "reasoning_content"):
        value = message.get(name)
        if isinstance(value, str):
            total += text_tokens(value)
        elif isinstance(value, list):
            total += sum(_part_tokens(part) for part in value)
    for call in message.get("tool_calls", ()):
        total += text_tokens(call["function"]["name"]) + text_tokens(call["function"]["arguments"])
    return total


def _part_tokens(part: dict[str, Any]) -> int:
    if part["type"] == "text":
        return text_tokens(part["text"])
    if part["type"] == "image_url":
        return LOW_DETAIL_IMAGE_TOKENS if part["image_url"].get("detail") == "low" else IMAGE_TOKENS
    data = part["file"]["file_data"]
    encoded = len(data.partition(",")[2] or data)  # a data URL's payload, or bare base64
    return math.ceil(encoded * 3 / 4 / FILE_BYTES_PER_TOKEN)

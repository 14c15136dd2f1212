"""An estimate of a Messages request's input tokens, for /v1/messages/count_tokens on upstreams
that cannot count them (only Anthropic's own endpoint can give the true number).

The estimate errs high, because clients use it to decide when to compact a conversation:
- text: a token per 4 ASCII characters, and a token per other character, since a CJK or Cyrillic
  character costs about a token on every tokenizer we know (counting UTF-8 bytes ÷ 4 would give
  CJK text a third of its cost, and Latin accents slightly too much);
- an image: 1,600 tokens, Anthropic's cost for the largest image it does not downscale;
- a PDF: 2,500 tokens per 50 KB of file, at least one page's worth (text plus the page image);
- tools: their name, description and schema as JSON text, plus the tool-use system prompt
  Anthropic adds (TOOLS_PROMPT); structure: MESSAGE_OVERHEAD tokens per message and block.
It never raises: a body it cannot read is counted as far as it can be read.
"""

from __future__ import annotations

import json
import math
from typing import Any

IMAGE_TOKENS = 1600
PDF_TOKENS_PER_PAGE = 2500
PDF_BYTES_PER_PAGE = 50_000
TOOLS_PROMPT = 350  # Anthropic's tables give about 300-350 tokens for the tool-use system prompt
MESSAGE_OVERHEAD = 4


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Return a conservative estimate of the request's input tokens (at least 1)."""
    if not isinstance(body, dict):
        return 1
    total = _content(body.get("system"))
    for message in _list(body.get("messages")):
        if isinstance(message, dict):
            total += MESSAGE_OVERHEAD + _content(message.get("content"))
    tools = _list(body.get("tools"))
    if tools:
        total += TOOLS_PROMPT + sum(_text(_json(t)) for t in tools)
    return max(total, 1)


def _text(text: str) -> int:
    ascii_chars = sum(1 for c in text if c < "\x80")
    return math.ceil(ascii_chars / 4) + len(text) - ascii_chars


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _content(content: Any) -> int:
    if isinstance(content, str):
        return _text(content)
    return sum(MESSAGE_OVERHEAD + _block(b) for b in _list(content) if isinstance(b, dict))


def _block(block: dict[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return _text(str(block.get("text") or ""))
    if kind == "thinking":
        return _text(str(block.get("thinking") or ""))
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "document":
        return _document(block.get("source"))
    if kind == "tool_use":
        return _text(str(block.get("name") or "")) + _text(_json(block.get("input")))
    if kind == "tool_result":
        return _content(block.get("content"))
    return _text(_json(block))  # a block we do not know: its JSON is an upper bound of its text


def _document(source: Any) -> int:
    if not isinstance(source, dict):
        return PDF_TOKENS_PER_PAGE
    if source.get("type") == "text":
        return _text(str(source.get("data") or ""))
    if source.get("type") == "content":
        return _content(source.get("content"))
    data = source.get("data")
    size = len(data) * 3 // 4 if isinstance(data, str) else 0  # base64's size, without decoding it
    return PDF_TOKENS_PER_PAGE * max(1, math.ceil(size / PDF_BYTES_PER_PAGE))

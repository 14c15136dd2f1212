"""The text weight of OpenAI chunks: from the bytes of a plain content chunk (no JSON parse), else of a delta.

Most events of a stream are one choice's next few characters:
`{"id":…,"model":"m","choices":[{"index":0,"delta":{"content":"…"},"finish_reason":null}]}`.
The translator needs nothing from such a chunk but the model swapped (a byte replace) and the text's
weight for an estimate; everything else about it is to be relayed as it came.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.providers.base import text_weight

# Without a backslash in the data no JSON string holds an escape, so a quote always ends a string
# and `"content":"…"` can only be that key and its whole value.
_CONTENT = re.compile(rb'"delta":\{"content":"([^"\\]*)"\}')
# Anything else the translator reads, counts or rewrites sends the chunk down the full parse.
_OTHER = re.compile(rb'"(?:usage|error|reasoning|reasoning_content|refusal|tool_calls|text|role)"')


def content_weight(data: bytes) -> int | None:
    """Return the text weight of a plain content chunk (ASCII: a unit a byte), or None for any other."""
    if data[:1] != b"{" or data[-1:] != b"}" or b"\\" in data or not data.isascii():
        return None
    if _OTHER.search(data):
        return None
    # Cut short, a chunk would leave a bracket open; a bracket inside a string only costs the parse.
    if data.count(b"{") != data.count(b"}") or data.count(b"[") != data.count(b"]"):
        return None
    # Every choice unfinished, and every "content" a delta's string, else the full parse decides.
    if data.count(b'"finish_reason"') != data.count(b'"finish_reason":null'):
        return None
    texts = _CONTENT.findall(data)
    if not texts or len(texts) != data.count(b'"content"'):
        return None
    return sum(len(text) for text in texts)


def delta_weight(delta: Any) -> int:
    """Weigh a parsed delta's generated text: content, reasoning, refusal and tool calls."""
    if not isinstance(delta, dict):
        return 0
    total = 0
    for name in ("content", "reasoning_content", "reasoning", "refusal"):
        value = delta.get(name)
        if isinstance(value, str):
            total += text_weight(value)
    for call in delta.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for name in ("name", "arguments"):
                value = function.get(name)
                if isinstance(value, str):
                    total += text_weight(value)
    return total

"""Server-sent events as translators see them: the Event they read and the bytes they write.

Every event written ends with a blank line, and none carries an `id:` field
(docs/wire-formats.md#sse-what-the-gateway-emits).
"""

from __future__ import annotations

from dataclasses import dataclass

DONE = b"data: [DONE]\n\n"
KEEP_ALIVE = b": keep-alive\n\n"


@dataclass(frozen=True)
class Event:
    """One dispatched event, or one comment line (comment is not None, data is None)."""

    data: bytes | None = None
    event: str | None = None
    comment: bytes | None = None


def encode_data(payload: bytes) -> bytes:
    """Frame one JSON payload as a data event ending in a blank line."""
    return b"data: " + payload + b"\n\n"


def encode_comment(line: bytes) -> bytes:
    """Frame one comment line (it starts with ':') as its own keep-alive event."""
    return line + b"\n\n"

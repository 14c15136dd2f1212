"""Responses stream events on the wire: their framing, and the failure a stream ends with in-band."""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import GatewayError
from gateway.providers.chunks import dumps


def loads_object(raw: bytes) -> dict[str, Any] | None:
    """Return raw parsed as a JSON object, or None for invalid, too deeply nested or non-object JSON."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def encode_event(event: dict[str, Any]) -> bytes:
    """Frame one event as `event: <type>` and its JSON data line, ending in a blank line."""
    return b"event: " + str(event["type"]).encode("utf-8") + b"\ndata: " + dumps(event) + b"\n\n"


def error_object(exc: GatewayError) -> dict[str, Any]:
    """Return the error of a failed response: our stable code, the message, type and param."""
    return {"type": exc.type, "code": exc.code, "message": exc.message, "param": exc.param}


def failure_events(response: dict[str, Any], exc: GatewayError) -> list[dict[str, Any]]:
    """Return the two events that end a stream broken after its first byte, without sequence numbers.

    response.failed is the terminal event Codex reads (it retries or stops on error.code). The
    `error` event after it carries the fields both flat, as the API reference documents them, and
    nested under `error`, as the live API sends them: only the nested key makes the openai SDKs
    raise APIError instead of handing the event over as data.
    """
    failed = dict(response, status="failed", error=error_object(exc))
    error = {
        "type": "error",
        "code": exc.code,
        "message": exc.message,
        "param": exc.param,
        "error": error_object(exc),
    }
    return [{"type": "response.failed", "response": failed}, error]


def numbered(event: dict[str, Any], sequence_number: int) -> dict[str, Any]:
    """Return the event with its sequence number right after its type, as OpenAI orders them."""
    return {"type": event["type"], "sequence_number": sequence_number, **event}

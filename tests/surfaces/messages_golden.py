"""Golden-file cases for the Anthropic Messages surface, in fixtures/anthropic_messages/.

For each case:
  <case>.request.json       a Messages request        -> <case>.canonical.json (the canonical chat body)
                                                        or <case>.refusal.json (the 400: status, param)
  <case>.completion.json    a canonical chat.completion -> <case>.message.json (the Messages object)
  <case>.chunks.sse         canonical SSE frames       -> <case>.events.sse (the client's events) and
                            <case>.usage.json (the writer's Usage); with <case>.upstream_error.json
                            the relay hits that error after the frames (an error after the first byte)
  <case>.native.sse         an anthropic upstream's stream -> <case>.native.expected.sse and
                            <case>.native.usage.json; a stream that fails ends with the error the
                            relay would write, and <case>.native.error.json says which
  <case>.exception.json     a GatewayError (class, message, status?, type?) -> <case>.envelope.json
Every input needs its expected file: a missing one fails. GOLDEN_UPDATE=1 writes the missing ones
from the code's output; read each by hand before committing it.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import GatewayError
from gateway.providers.anthropic.native import NativeStreamReader
from gateway.providers.events import Event, encode_comment, encode_data
from gateway.surfaces.anthropic_messages.stream import MessagesStreamWriter
from gateway.upstream.sse import Decoder

FOLDER = Path(__file__).parent / "fixtures" / "anthropic_messages"
PUBLIC_MODEL = "acme:claude-x"
PROVIDER = ProviderConfig(name="acme", type="anthropic", base_url="https://anthropic.test/v1")
MESSAGE_ID = "msg_gw0001"


def cases(suffix: str) -> list[str]:
    return sorted(p.name[: -len(suffix)] for p in FOLDER.glob(f"*{suffix}"))


def path(case: str, suffix: str) -> Path:
    return FOLDER / f"{case}{suffix}"


def check(target: Path, got: str) -> None:
    """Compare with a golden file, or write it when GOLDEN_UPDATE is set and it is missing."""
    if not target.exists() and os.environ.get("GOLDEN_UPDATE"):
        target.write_text(got, encoding="utf-8")
    assert target.exists(), f"missing golden file {target.name}"
    assert got == target.read_text(encoding="utf-8")


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def usage_json(usage: Any) -> str:
    return json.dumps(None if usage is None else dataclasses.asdict(usage)) + "\n"


def load(target: Path) -> Any:
    return json.loads(target.read_text(encoding="utf-8"))


def exception(spec: dict[str, Any]) -> GatewayError:
    """Build the GatewayError a fixture names: {"class", "message", and optional status, type}."""
    # Looked up through importlib: the gateway package's own `errors` attribute is the errors blueprint.
    cls = getattr(importlib.import_module("gateway.errors"), spec["class"])
    assert isinstance(cls, type) and issubclass(cls, GatewayError)
    extra = {k: spec[k] for k in ("status", "type") if k in spec}
    return cls(spec.get("message"), **extra)


def decode(*pieces: bytes) -> list[Event]:
    decoder = Decoder()
    return [e for piece in pieces for e in decoder.feed(piece)] + decoder.flush()


def frame(event: Event) -> bytes:
    """Re-encode a decoded canonical event as the frame a provider translator would have emitted."""
    if event.comment is not None:
        return encode_comment(event.comment)
    assert event.data is not None
    return encode_data(event.data)


def write_events(events: list[Event], upstream_error: GatewayError | None = None) -> tuple[bytes, Any]:
    """Run canonical events through a fresh writer as the relay does; return the bytes and the writer."""
    writer = MessagesStreamWriter(PUBLIC_MODEL, MESSAGE_ID)
    out: list[bytes] = []
    try:
        for event in events:
            out += writer.feed(frame(event))
        if upstream_error is not None:
            raise upstream_error
        out += writer.finish()
    except GatewayError as exc:
        out.append(writer.error(exc))
    return b"".join(out), writer


def read_native(events: list[Event]) -> tuple[bytes, Any, GatewayError | None]:
    """Run upstream events through a fresh native reader; a failure ends with the surface's error."""
    reader, writer = (
        NativeStreamReader(PUBLIC_MODEL, PROVIDER),
        MessagesStreamWriter(PUBLIC_MODEL, MESSAGE_ID),
    )
    out: list[bytes] = []
    failure = None
    try:
        for event in events:
            out += reader.feed(event)
        out += reader.finish()
    except GatewayError as exc:
        failure = exc
        out.append(writer.error(exc))
    return b"".join(out), reader, failure

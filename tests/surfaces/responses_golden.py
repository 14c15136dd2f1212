"""Golden-file cases for the Responses surface, in fixtures/responses/.

For each case:
  <case>.request.json (+ <case>.history.json)  -> <case>.canonical.json, or <case>.error.json when
                                                 the request must be refused (status, param, message)
  <case>.completion.json                        -> <case>.response.json (echoing <case>.request.json)
  <case>.chunks.sse (+ <case>.raise.json, the   -> <case>.events.sse and <case>.usage.json
    error the upstream raised after the frames)
  <case>.native.sse                             -> <case>.native.expected.sse and <case>.native.usage.json
  <case>.native.json                            -> <case>.native.expected.json and <case>.native.usage.json
An expected file that is missing fails its test; GOLDEN_UPDATE=1 writes it from the code's output,
to be read by hand before it is committed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError, UpstreamStatusError
from gateway.providers.events import Event, encode_comment, encode_data
from gateway.upstream.sse import Decoder
from tests.providers import golden as provider_golden
from tests.providers.golden import as_json, usage_json

__all__ = ["as_json", "usage_json"]  # shared with the provider goldens, used through this module

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
RESPONSE_ID = "resp_0123456789abcdef"
CREATED_AT = 1700000000
PUBLIC_MODEL = "acme:chat-model"


def cases(suffix: str) -> list[str]:
    """Return the names of the cases that have a file ending in suffix."""
    return sorted(p.name[: -len(suffix)] for p in FIXTURES.glob(f"*{suffix}"))


def path(case: str, suffix: str) -> Path:
    return FIXTURES / f"{case}{suffix}"


def load(case: str, suffix: str) -> Any:
    return json.loads(path(case, suffix).read_text(encoding="utf-8"))


def optional(case: str, suffix: str) -> Any:
    return load(case, suffix) if path(case, suffix).exists() else None


def check(case: str, suffix: str, got: str) -> None:
    """Compare with a case's golden file (GOLDEN_UPDATE=1 writes it only when it is missing)."""
    provider_golden.check(path(case, suffix), got)


def error_json(exc: GatewayError) -> str:
    return as_json({"status": exc.status, "type": exc.type, "param": exc.param, "message": exc.message})


def raised(case: str) -> GatewayError | None:
    """Return the error a case's upstream raised after its frames, from <case>.raise.json."""
    spec = optional(case, ".raise.json")
    if spec is None:
        return None
    return UpstreamStatusError(spec["message"], status=spec["status"], type=spec["type"], code=spec["code"])


def events_of(raw: bytes, pieces: list[bytes] | None = None) -> list[Event]:
    """Decode raw SSE bytes, fed whole or in the given pieces, as the upstream module does."""
    decoder = Decoder()
    events: list[Event] = []
    for piece in pieces or [raw]:
        events += decoder.feed(piece)
    return events + decoder.flush()


def frames_of(events: list[Event]) -> list[bytes]:
    """Return each event as the canonical frame a provider translator emits."""
    frames = []
    for event in events:
        if event.comment is not None:
            frames.append(encode_comment(event.comment))
        elif event.data is not None:
            frames.append(encode_data(event.data))
    return frames


def splits(raw: bytes) -> list[list[bytes]]:
    """Return raw cut in two at every byte offset."""
    return [[raw[:i], raw[i:]] for i in range(1, len(raw))]

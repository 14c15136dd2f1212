"""What a client surface gives the relay, when the client does not speak chat completions.

A request in another format (Anthropic Messages, OpenAI Responses) is parsed into the canonical chat
form for the hold and for upstreams that need translating, and keeps its own body for an upstream
that speaks the same format (the native operation). The relay asks the ClientFormat to turn a
canonical answer or stream back into the client's format, and to write an error after the first byte.
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.errors import GatewayError
from gateway.providers.base import StreamTranslator


class StreamWriter(Protocol):
    """Turns one canonical stream (chat.completion.chunk SSE frames) into the client's events."""

    def feed(self, frame: bytes) -> list[bytes]:
        """Return the client's events for one canonical frame (a data event, a comment or [DONE])."""
        ...

    def finish(self) -> list[bytes]:
        """Return the client's closing events, once the canonical stream has ended."""
        ...


class ClientFormat(Protocol):
    """One request's own format: how it goes up natively and how a translated answer comes back."""

    # Read-only, so a frozen dataclass is one.
    @property
    def native_operation(self) -> str:
        """The adapter operation that relays this format untouched."""
        ...

    @property
    def native_body(self) -> dict[str, Any]:
        """The client's body, for an upstream that speaks the format."""
        ...

    @property
    def forward_headers(self) -> tuple[tuple[str, str], ...]:
        """The client headers a native relay may pass on."""
        ...

    def answer(self, completion: bytes, public_model: str) -> bytes:
        """Turn a canonical chat.completion body into the client's whole answer."""
        ...

    def writer(self, public_model: str) -> StreamWriter:
        """Return a fresh writer for one translated stream."""
        ...

    def native_stream(self, translator: StreamTranslator) -> StreamTranslator:
        """Return the stream translator of a native relay, wrapped if the format needs to see it."""
        ...

    def error_event(self, exc: GatewayError, request_id: str) -> bytes:
        """Return the in-band event that ends a stream which failed after its first byte."""
        ...

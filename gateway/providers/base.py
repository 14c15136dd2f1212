"""The adapter interface and the plain values adapters exchange with the rest of the gateway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config import ProviderConfig
from gateway.errors import UpstreamError
from gateway.sse import Event


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False


@dataclass(frozen=True)
class UpstreamRequest:
    provider: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stream: bool
    connect_timeout: float
    read_timeout: float


@dataclass(frozen=True)
class Completion:
    body: bytes  # the client-ready JSON
    usage: Usage | None


class StreamTranslator:
    """Turns one upstream stream into client SSE bytes; a fresh object per stream.

    feed() returns the bytes to send at once; it raises UpstreamError for an in-band upstream
    error. finish() is called at upstream end of stream and raises if the stream was cut short.
    """

    usage: Usage | None = None
    relayed_bytes = 0  # bytes of generated text relayed, for an estimate when usage never comes

    def feed(self, event: Event) -> list[bytes]:
        raise NotImplementedError

    def finish(self) -> list[bytes]:
        raise NotImplementedError


class Adapter:
    """One per configured provider: builds upstream requests and reads upstream answers."""

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider

    def build_request(self, body: dict[str, Any], upstream_model: str, stream: bool) -> UpstreamRequest:
        raise NotImplementedError

    def parse_response(self, raw: bytes, public_model: str) -> Completion:
        raise NotImplementedError

    def parse_error(self, status: int, raw: bytes, headers: dict[str, str]) -> UpstreamError:
        raise NotImplementedError

    def translator(self, public_model: str, upstream_model: str, client_usage: bool) -> StreamTranslator:
        raise NotImplementedError

    def redact(self, text: str) -> str:
        """Remove the provider's secret and address from text that may reach a client or a log."""
        for secret in (self.provider.api_key, self.provider.base_url):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "[redacted]")
        return text

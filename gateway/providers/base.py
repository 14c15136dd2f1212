"""The adapter interface and the plain values adapters exchange with the rest of the gateway."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import InvalidRequestError, UpstreamAuthError, UpstreamError, UpstreamStatusError
from gateway.providers.events import Event

CHAT, COMPLETIONS, EMBEDDINGS = "chat", "completions", "embeddings"
# Native operations: a client's own format relayed as is to an upstream that speaks it.
MESSAGES, RESPONSES = "messages", "responses"
# Anthropic's POST /v1/messages/count_tokens: relayed natively, never billed (Anthropic does not bill it).
COUNT_TOKENS = "count_tokens"
# The Responses API's POST /responses/input_tokens (a free count) and /responses/compact (billed).
INPUT_TOKENS, COMPACT = "responses_input_tokens", "responses_compact"
MAX_MESSAGE = 2000  # characters of an upstream error message passed on to the client
_AUTH = {"api-key": "api-key", "x-api-key": "x-api-key", "x-goog-api-key": "x-goog-api-key"}


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # part of prompt_tokens read from the provider's prompt cache
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0  # part of prompt_tokens written to the cache (Anthropic bills them dearer)
    estimated: bool = False


def as_object(value: Any) -> dict[str, Any]:
    """Return a JSON object as it is, anything else as an empty one: upstreams send what they like."""
    return value if isinstance(value, dict) else {}


def token_count(raw: dict[str, Any], name: str) -> int:
    """Read one token count from an upstream usage object: a positive integer, else 0."""
    value = raw.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True)
class UpstreamRequest:
    provider: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stream: bool
    connect_timeout: float
    first_byte_timeout: float
    idle_timeout: float
    total_timeout: float
    proxy: str = ""  # an http(s) proxy URL, or "" to connect directly


@dataclass(frozen=True)
class Completion:
    body: bytes  # the client-ready JSON
    usage: Usage | None


def text_weight(text: str) -> int:
    """Weigh text for a token estimate (4 to a token): ASCII a unit a character, any other 4.

    Tokenizers give English about 4 characters a token, but CJK and most non-Latin scripts at least
    one token a character, which is 3 bytes of UTF-8: counting bytes / 4 would bill 0.75.
    """
    if text.isascii():
        return len(text)
    ascii_chars = len(text.encode("ascii", "ignore"))
    return ascii_chars + 4 * (len(text) - ascii_chars)


class StreamTranslator:
    """Turns one upstream stream into client SSE bytes; a fresh object per stream.

    feed() returns the bytes to send at once; it raises UpstreamError for an in-band upstream
    error. finish() is called at upstream end of stream and raises if the stream was cut short.
    """

    usage: Usage | None = None
    # The generated text relayed, in text_weight units, for an estimate when usage never comes.
    relayed_bytes = 0

    def feed(self, event: Event) -> list[bytes]:
        raise NotImplementedError

    def finish(self) -> list[bytes]:
        raise NotImplementedError


class Adapter:
    """One per configured provider: builds upstream requests and reads upstream answers.

    An operation is CHAT (/chat/completions), COMPLETIONS (legacy) or EMBEDDINGS, or a native one
    (MESSAGES, RESPONSES) for a client whose format the upstream speaks itself; an adapter lists the
    ones its upstream has in `operations`, and the routes refuse the others before any billing.

    max_output is the output cap the hold was computed with, per choice: it goes upstream in the
    provider's own field, always, so an answer can never be longer than what was held. headers
    are the client's allow-listed headers that a native relay forwards (anthropic-beta, …).
    """

    operations: frozenset[str] = frozenset({CHAT})

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider
        # Made-up ids and timestamps come from here, so golden tests can pin them.
        self.clock: Callable[[], float] = time.time
        self.new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:24]

    def supports(self, operation: str) -> bool:
        return operation in self.operations

    def build_request(
        self,
        body: dict[str, Any],
        upstream_model: str,
        stream: bool,
        operation: str = CHAT,
        *,
        max_output: int | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> UpstreamRequest:
        raise NotImplementedError

    def parse_response(self, raw: bytes, public_model: str, operation: str = CHAT) -> Completion:
        raise NotImplementedError

    def parse_error(self, status: int, raw: bytes, headers: dict[str, str]) -> UpstreamError:
        raise NotImplementedError

    def translator(
        self, public_model: str, upstream_model: str, client_usage: bool, operation: str = CHAT
    ) -> StreamTranslator:
        raise NotImplementedError

    def auth_headers(self) -> list[tuple[str, str]]:
        """Return the provider's credential header and its configured extra headers."""
        headers = list(self.provider.headers)
        key, style = self.provider.api_key, self.provider.auth
        if key and style == "bearer":
            headers.append(("Authorization", f"Bearer {key}"))
        elif key and style in _AUTH:
            headers.append((_AUTH[style], key))
        return headers

    def request(self, url: str, body: bytes, stream: bool, headers: list[tuple[str, str]]) -> UpstreamRequest:
        """Wrap a built body into the UpstreamRequest the upstream module sends."""
        accept = "text/event-stream" if stream else "application/json"
        return UpstreamRequest(
            provider=self.provider.name,
            url=url,
            headers=(("Content-Type", "application/json"), ("Accept", accept), *headers),
            body=body,
            stream=stream,
            connect_timeout=self.provider.connect_timeout,
            first_byte_timeout=self.provider.first_byte_timeout,
            idle_timeout=self.provider.idle_timeout,
            total_timeout=self.provider.total_timeout,
            proxy=self.provider.proxy,
        )


def upstream_error(
    provider: ProviderConfig,
    status: int,
    message: str | None,
    kind: str | None = None,
    code: str | None = None,
    param: str | None = None,
    credential: bool = False,
) -> UpstreamError:
    """Normalise an upstream error into ours; credential failures are the operator's."""
    name = provider.name
    if credential or status in (401, 402, 403):
        # The client's key was fine; the gateway's provider key or account was not.
        return UpstreamAuthError(
            f"Provider '{name}' refused the gateway's credentials or account "
            f"(HTTP {status}); the gateway operator must check this provider's key and balance."
        )
    message = (
        redact(provider, message)[:MAX_MESSAGE]
        if message
        else f"Provider '{name}' answered with HTTP {status}."
    )
    if not 400 <= status <= 599:
        status = 502
    if kind is None:
        kind = "invalid_request_error" if status < 500 else "server_error"
    if code is None:
        code = {429: "rate_limit_exceeded"}.get(status, "upstream_error" if status >= 500 else None)
    return UpstreamStatusError(message, status=status, type=kind, code=code, param=param)


def redact(provider: ProviderConfig, text: str) -> str:
    """Remove the provider's secret, address and proxy from text that may reach a client or a log."""
    for secret in (provider.api_key, provider.base_url, provider.proxy):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return text


EFFORTS = ("none", "minimal", "low", "medium", "high")


def reasoning_effort(body: dict[str, Any]) -> str | None:
    """Return the request's reasoning_effort for a translating adapter, or raise a 400 for one it
    cannot map (OpenAI-compatible upstreams get the field as sent)."""
    effort = body.get("reasoning_effort")
    if effort is None or effort in EFFORTS:
        return effort
    raise InvalidRequestError(
        f"'reasoning_effort' must be one of {', '.join(EFFORTS)}.", param="reasoning_effort"
    )


def unsupported(provider: str, what: str, param: str) -> InvalidRequestError:
    """Return the 400 for a request field a provider's wire format cannot express."""
    return InvalidRequestError(f"Provider '{provider}' does not support {what}.", param=param)

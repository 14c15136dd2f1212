"""An Anthropic Messages client relayed to an anthropic upstream in its own format, nothing lost.

Only three things change: the model name (the upstream's id going up, the client's coming back),
max_tokens (the cap the gateway holds money for), and thinking blocks the gateway made up on a
translated turn, which Anthropic would reject. Usage is read on the way through, for billing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import UpstreamProtocolError
from gateway.providers.anthropic.mapping import cut_usage, error_from, usage_from
from gateway.providers.base import StreamTranslator, Usage, text_weight
from gateway.providers.chunks import dumps
from gateway.providers.events import Event, encode_comment

# Marks the signature of a thinking block the gateway built from another model's reasoning
# (surfaces/anthropic_messages): no Anthropic model signed it, so it never goes back to one.
UNSIGNED_PREFIX = "gateway-unsigned:"
# The client headers that travel upstream. The client's own key (x-api-key, Authorization) never
# does: the provider's credentials are added by the adapter.
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def forwarded_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """Return the allow-listed client headers, whatever their case."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return [(name, lowered[name]) for name in FORWARDED_HEADERS if name in lowered]


def native_body(body: dict[str, Any], upstream_model: str, max_tokens: int) -> bytes:
    """Return the client's body for the upstream: model swapped, output capped, unsigned thinking gone."""
    return dumps(_for_upstream(dict(body, max_tokens=max_tokens), upstream_model))


def count_body(body: dict[str, Any], upstream_model: str) -> bytes:
    """Return a count_tokens body for the upstream: model swapped, unsigned thinking gone.

    Nothing is capped: counting generates no output.
    """
    return dumps(_for_upstream(dict(body), upstream_model))


def count_answer(raw: bytes) -> bytes:
    """Return the upstream's count_tokens answer as it came, once it is known to hold input_tokens."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    count = data.get("input_tokens") if isinstance(data, dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise UpstreamProtocolError("The upstream sent a token count without input_tokens.")
    return dumps(data)


def _for_upstream(body: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    body["model"] = upstream_model
    messages = body.get("messages")
    if isinstance(messages, list):
        body["messages"] = [m for m in (_signed_only(m) for m in messages) if m is not None]
    return body


def _signed_only(message: Any) -> Any:
    """Return the message without gateway-made thinking blocks; None when nothing else was in it."""
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return message
    content = message.get("content")
    if not isinstance(content, list):
        return message
    kept = [block for block in content if not _unsigned(block)]
    if len(kept) == len(content):
        return message
    # An assistant turn of nothing but made-up reasoning would be an empty turn, which Anthropic refuses.
    return dict(message, content=kept) if kept else None


def _unsigned(block: Any) -> bool:
    signature = block.get("signature") if isinstance(block, dict) else None
    return (
        block.get("type") == "thinking"
        and isinstance(signature, str)
        and signature.startswith(UNSIGNED_PREFIX)
    )


def native_whole(raw: bytes, public_model: str) -> tuple[bytes, Usage]:
    """Return a whole upstream message with the client's model name, and its usage."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or data.get("type") != "message":
        raise UpstreamProtocolError("The upstream sent a response that is not a message.")
    data["model"] = public_model
    return dumps(data), usage_from(data.get("usage")) or Usage()


class NativeStreamReader(StreamTranslator):
    """Re-emits each upstream event as it came, with the client's model in message_start.

    Only message_start, message_delta and error events are parsed: the first two carry usage (input
    counts in the first, cumulative output counts, and newer API versions' input counts, in the
    second), the last becomes an UpstreamError for the relay.
    """

    def __init__(self, public_model: str, provider: ProviderConfig) -> None:
        self.public_model = public_model
        self.provider = provider
        self.usage: Usage | None = None
        self.relayed_bytes = 0
        self._counts: dict[str, Any] = {}  # Anthropic's own usage fields, as they stand so far
        self._delta_seen = False
        self._started: Usage | None = None  # message_start's usage, until message_delta comes
        self._stopped = False

    def feed(self, event: Event) -> list[bytes]:
        if event.comment is not None:
            return [encode_comment(event.comment)]
        if event.data is None or self._stopped:
            return []
        data = event.data
        name = event.event or _type_of(data)
        if name == "error":
            raise error_from(self.provider, _parse(data), 502)
        if name == "message_start":
            data = self._start(data)
        elif name == "message_delta":
            self._delta(data)
        elif name == "message_stop":
            self._stopped = True
        elif name == "content_block_delta":
            self._relayed(data)
        return [_frame(name, data)]

    def finish(self) -> list[bytes]:
        if self._stopped:
            return []
        if not self._delta_seen:
            raise UpstreamProtocolError("The upstream ended the stream before the answer was complete.")
        # message_delta came, so the answer is whole; only message_stop went missing. Send it, so
        # the client's parser sees a finished message.
        self._stopped = True
        return [_frame("message_stop", b'{"type":"message_stop"}')]

    def _start(self, data: bytes) -> bytes:
        start = _parse(data)
        message = start.get("message")
        if not isinstance(message, dict):
            raise UpstreamProtocolError("The upstream sent a message_start without a message.")
        message["model"] = self.public_model
        self._count(message.get("usage"))
        return dumps(start)

    def _delta(self, data: bytes) -> None:
        self._delta_seen, self._started = True, None
        self._count(_parse(data).get("usage"))
        if self._counts:  # the answer's own count now, even when this delta repeats none of it
            self.usage = usage_from(self._counts)

    def _count(self, usage: Any) -> None:
        """Merge a usage object into the counts so far, field by field.

        Counts are cumulative, so a later one replaces an earlier one; a field message_delta leaves
        out (the cache counts, often) keeps its message_start value.
        """
        if isinstance(usage, dict):
            self._counts.update((name, n) for name, n in usage.items() if n is not None)
            self.usage = usage_from(self._counts)
            if not self._delta_seen and self.usage is not None:
                self._started = self.usage
                self.usage = cut_usage(self._started, self.relayed_bytes)

    def _relayed(self, data: bytes) -> None:
        """Count the text of one delta, for the output's estimate if the stream ends before message_delta.

        Only deltas are parsed here; their JSON frame is several times the size of a token or two of text.
        """
        delta = _parse(data).get("delta")
        if isinstance(delta, dict):
            text = delta.get("text") or delta.get("thinking") or delta.get("partial_json")
            if isinstance(text, str):
                self.relayed_bytes += text_weight(text)
        if self._started is not None:
            self.usage = cut_usage(self._started, self.relayed_bytes)


def _parse(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise UpstreamProtocolError("The upstream sent a stream event that is not a JSON object.")
    return value


def _type_of(data: bytes) -> str:
    kind = _parse(data).get("type")
    return kind if isinstance(kind, str) else "unknown"


def _frame(name: str, data: bytes) -> bytes:
    # A data field holding a line break must become several data lines, or the client would read
    # the rest as fields of its own.
    return b"event: " + name.encode() + b"\ndata: " + data.replace(b"\n", b"\ndata: ") + b"\n\n"

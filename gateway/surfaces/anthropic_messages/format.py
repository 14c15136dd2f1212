"""The Messages API as a client format of the relay: a request parsed for the hold, answers in its shapes.

The canonical form is what the hold and translated upstreams see; the client's own body and its
anthropic-version / anthropic-beta headers are kept for an anthropic upstream, which gets them as sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.providers.anthropic.native import forwarded_headers
from gateway.providers.base import CHAT, MESSAGES, StreamTranslator
from gateway.surfaces import openai_chat, priced_fields
from gateway.surfaces.anthropic_messages import mapping, request, response
from gateway.surfaces.anthropic_messages.errors import envelope
from gateway.surfaces.anthropic_messages.stream import MessagesStreamWriter


@dataclass(frozen=True)
class MessagesFormat:
    """One Messages request's own format (a surfaces.base.ClientFormat)."""

    native_body: dict[str, Any]
    forward_headers: tuple[tuple[str, str], ...]
    dropped: tuple[str, ...] = ()  # fields a translated upstream does not get, unknown to the gateway
    native_operation: str = MESSAGES

    def answer(self, completion: bytes, public_model: str) -> bytes:
        """Turn a canonical chat.completion into an Anthropic message."""
        try:
            data = json.loads(completion)
        except (ValueError, RecursionError):
            raise UpstreamProtocolError() from None
        return mapping.dumps(response.from_canonical(data, public_model))

    def writer(self, public_model: str) -> MessagesStreamWriter:
        return MessagesStreamWriter(public_model)

    def native_stream(self, translator: StreamTranslator) -> StreamTranslator:
        return translator  # relayed as it is

    def error_event(self, exc: GatewayError, request_id: str) -> bytes:
        """Return Anthropic's in-band `event: error`, with the envelope a whole answer would carry."""
        return mapping.event(envelope(exc, request_id))


def parse(body: dict[str, Any], headers: Mapping[str, str]) -> openai_chat.ParsedRequest:
    """Check a Messages body and return it in the canonical form, carrying its own format; raise a 400."""
    canonical = request.to_canonical(body)
    client = MessagesFormat(
        # Anthropic's service_tier may choose its Priority Tier, at its own rate: dropped, as on chat.
        native_body=priced_fields.unpriced(body),
        forward_headers=tuple(forwarded_headers(headers)),
        dropped=tuple(request.unknown_fields(body)),
    )
    return openai_chat.parse(CHAT, canonical, client=client)

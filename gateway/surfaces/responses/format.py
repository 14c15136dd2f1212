"""The Responses API as a client format of the relay: a request parsed for the hold, answers in its shapes.

One ResponsesFormat serves one request. It is not frozen: it remembers the stream it handed out,
because a Responses stream's in-band failure continues that stream's sequence numbers, and it
hands each finished response to `keep` (the response store) before its terminal event is sent,
so a client that has read response.completed can already continue from it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateway.errors import GatewayError, InvalidRequestError, UpstreamProtocolError
from gateway.providers.base import CHAT, COMPACT, RESPONSES, StreamTranslator
from gateway.providers.chunks import dumps
from gateway.providers.events import Event
from gateway.providers.responses.native import NativeStreamReader
from gateway.surfaces import openai_chat, priced_fields
from gateway.surfaces.responses import request, response
from gateway.surfaces.responses.stream import ResponsesStreamWriter

# Called with each finished response object (completed or incomplete), and whether it came natively.
Keep = Callable[[dict[str, Any], bool], None]
_Kept = Callable[[dict[str, Any] | None, bool], None]
KEPT = ("completed", "incomplete")


class ResponsesFormat:
    """One Responses request's own format (a surfaces.base.ClientFormat)."""

    native_operation = RESPONSES
    forward_headers: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        body: dict[str, Any],
        native_body: dict[str, Any],
        response_id: str,
        created_at: int,
        keep: Keep | None = None,
    ) -> None:
        self.body = body  # the client's request, which a translated response echoes
        self.native_body = native_body
        self.response_id = response_id
        self.created_at = created_at
        self.keep = keep
        self._stream: ResponsesStreamWriter | NativeStreamReader | None = None

    def answer(self, completion: bytes, public_model: str) -> bytes:
        """Turn a canonical chat.completion into a response object, and keep it."""
        try:
            data = json.loads(completion)
        except (ValueError, RecursionError):
            raise UpstreamProtocolError() from None
        if not isinstance(data, dict):
            raise UpstreamProtocolError()
        result = response.from_canonical(data, self.body, self.response_id, self.created_at)
        self._keep(result, native=False)
        return dumps(result)

    def native_answer(self, data: dict[str, Any]) -> None:
        """Keep a whole response an upstream gave in its own format."""
        self._keep(data, native=True)

    def writer(self, public_model: str) -> KeptWriter:
        writer = ResponsesStreamWriter(self.body, self.response_id, self.created_at)
        self._stream = writer
        return KeptWriter(writer, self._keep)

    def native_stream(self, translator: StreamTranslator) -> StreamTranslator:
        """Wrap the adapter's native reader, so its finished response is kept before it is sent."""
        if not isinstance(translator, NativeStreamReader):
            return translator
        self._stream = translator
        return KeptReader(translator, self._keep)

    def error_event(self, exc: GatewayError, request_id: str) -> bytes:
        """Return response.failed and `error`, numbered after the events the stream has sent."""
        if self._stream is None:
            writer = ResponsesStreamWriter(self.body, self.response_id, self.created_at)
            return writer.error(exc)
        return self._stream.error(exc)

    def _keep(self, result: dict[str, Any] | None, native: bool) -> None:
        if self.keep is not None and result is not None and result.get("status") in KEPT:
            self.keep(result, native)


class KeptWriter:
    """A translated stream's writer that keeps the response before its terminal event goes out."""

    def __init__(self, writer: ResponsesStreamWriter, keep: _Kept) -> None:
        self.writer = writer
        self.keep = keep

    def feed(self, frame: bytes) -> list[bytes]:
        return self.writer.feed(frame)

    def finish(self) -> list[bytes]:
        out = self.writer.finish()
        self.keep(self.writer.response, False)
        return out


class KeptReader(StreamTranslator):
    """A native stream's reader that keeps the response before its terminal event goes out."""

    def __init__(self, inner: NativeStreamReader, keep: _Kept) -> None:
        self.inner = inner
        self.keep = keep
        self._kept = False

    def feed(self, event: Event) -> list[bytes]:
        out = self.inner.feed(event)
        self.usage, self.relayed_bytes = self.inner.usage, self.inner.relayed_bytes
        if self.inner.ended and not self._kept:
            self._kept = True
            self.keep(self.inner.response, True)
        return out

    def finish(self) -> list[bytes]:
        return self.inner.finish()


def parse(
    body: dict[str, Any],
    history: list[dict[str, Any]],
    native_body: dict[str, Any],
    response_id: str,
    created_at: int,
    keep: Keep | None = None,
) -> openai_chat.ParsedRequest:
    """Check a Responses body and return it in the canonical form, carrying its own format; raise a 400."""
    canonical = request.to_canonical(body, history)
    # Relayed natively, the body would take service_tier to OpenAI: dropped, as on every surface.
    client = ResponsesFormat(body, priced_fields.unpriced(native_body), response_id, created_at, keep)
    return openai_chat.parse(CHAT, canonical, client=client)


class CompactFormat:
    """A /responses/compact request: relayed only to an upstream that compacts itself, never streamed."""

    native_operation = COMPACT
    forward_headers: tuple[tuple[str, str], ...] = ()

    def __init__(self, native_body: dict[str, Any]) -> None:
        self.native_body = native_body

    def answer(self, completion: bytes, public_model: str) -> bytes:
        # A fallback without native compaction is skipped, as for any request it cannot carry.
        raise InvalidRequestError(
            "This model does not offer remote compaction.", code="unsupported_operation"
        )

    def writer(self, public_model: str) -> KeptWriter:
        raise InvalidRequestError("Compaction is not streamed.", param="stream")

    def native_stream(self, translator: StreamTranslator) -> StreamTranslator:
        return translator

    def error_event(self, exc: GatewayError, request_id: str) -> bytes:
        return ResponsesStreamWriter({}, "resp_compact", 0).error(exc)


def parse_compact(
    body: dict[str, Any], history: list[dict[str, Any]], native_body: dict[str, Any]
) -> openai_chat.ParsedRequest:
    """Check a compaction body; its canonical form is only what the hold is computed from."""
    if body.get("stream"):
        raise InvalidRequestError("Compaction is not streamed.", param="stream")
    canonical = request.to_canonical(body, history)
    return openai_chat.parse(CHAT, canonical, client=CompactFormat(priced_fields.unpriced(native_body)))

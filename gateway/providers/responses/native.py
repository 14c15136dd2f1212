"""A Responses client on an upstream that serves Responses itself: relayed in its own format.

Nothing goes through the canonical form, so nothing is lost (encrypted reasoning, include, store,
hosted tools): the model id is swapped both ways, the output cap is the one the hold was made
for, and usage is read from the terminal event. An upstream `error` event is relayed as it is and
ends the stream like a terminal event, so the relay adds no second error after it.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.providers.base import Completion, StreamTranslator, Usage, text_weight, token_count
from gateway.providers.chunks import dumps
from gateway.providers.events import Event, encode_comment
from gateway.providers.responses.events import encode_event, failure_events, loads_object, numbered

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
    }
)


def native_body(body: dict[str, Any], upstream_model: str, max_output_tokens: int | None) -> bytes:
    """Return the upstream request: the client's body with the upstream model and the held cap."""
    if max_output_tokens is None:
        return dumps(dict(body, model=upstream_model))
    return dumps(dict(body, model=upstream_model, max_output_tokens=max_output_tokens))


def usage_from_responses(raw: Any) -> Usage | None:
    """Read a Responses usage object: input and output tokens, cache reads and writes, reasoning."""
    if not isinstance(raw, dict) or ("input_tokens" not in raw and "output_tokens" not in raw):
        return None
    inputs, outputs = raw.get("input_tokens_details"), raw.get("output_tokens_details")
    inputs, outputs = inputs if isinstance(inputs, dict) else {}, outputs if isinstance(outputs, dict) else {}
    return Usage(
        prompt_tokens=token_count(raw, "input_tokens"),
        completion_tokens=token_count(raw, "output_tokens"),
        cached_tokens=token_count(inputs, "cached_tokens"),
        reasoning_tokens=token_count(outputs, "reasoning_tokens"),
        cache_write_tokens=token_count(inputs, "cache_write_tokens"),
    )


def native_whole(raw: bytes, public_model: str) -> tuple[bytes, Usage | None, dict[str, Any]]:
    """Return the client's body, the usage (None when the upstream gave none) and the response.

    :raises UpstreamProtocolError: when the body is not a Responses object.
    """
    data = loads_object(raw)
    if data is None or data.get("object") != "response":
        raise UpstreamProtocolError("The upstream sent a body that is not a Responses object.")
    data["model"] = public_model
    return dumps(data), usage_from_responses(data.get("usage")), data


def native_other(raw: bytes, public_model: str) -> Completion:
    """Return an input_tokens count or a compaction as the upstream gave it, with the client's model.

    :raises UpstreamProtocolError: when the body is not a JSON object.
    """
    data = loads_object(raw)
    if data is None:
        raise UpstreamProtocolError("The upstream sent a body that is not a JSON object.")
    if "model" in data:
        data["model"] = public_model
    return Completion(body=dumps(data), usage=usage_from_responses(data.get("usage")))


class NativeStreamReader(StreamTranslator):
    """Relays one upstream Responses stream event by event, with the client's model id.

    It remembers the upstream's response id and the last response object it carried (the final
    one after a terminal event), for the store, and the last sequence number, so an in-band
    failure of our own continues the upstream's numbering.
    """

    def __init__(self, public_model: str, provider: str = "upstream") -> None:
        self.public_model = public_model
        self.provider = provider
        self.usage: Usage | None = None
        self.relayed_bytes = 0
        self.response_id: str | None = None
        self.response: dict[str, Any] | None = None
        self._items: dict[int, dict[str, Any]] = {}  # output index -> the item as last relayed
        self._sequence = -1
        self._ended = False

    def feed(self, event: Event) -> list[bytes]:
        if event.comment is not None:
            return [encode_comment(event.comment)]
        if event.data is None:
            return []
        if event.data.strip() == b"[DONE]":
            return [b"data: [DONE]\n\n"]  # some compatible servers end this way; the SDKs stop there
        data = loads_object(event.data)
        if data is None:
            raise UpstreamProtocolError(
                f"Provider '{self.provider}' sent a stream event that is not an object."
            )
        kind = data.get("type") or event.event
        if isinstance(data.get("sequence_number"), int):
            self._sequence = data["sequence_number"]
        if kind in DELTAS and isinstance(data.get("delta"), str):
            self.relayed_bytes += text_weight(data["delta"])
        if kind in TERMINAL:
            self._ended = True
        if kind in ("response.output_item.added", "response.output_item.done") and isinstance(
            data.get("item"), dict
        ):
            self._items[data.get("output_index", len(self._items))] = data["item"]
        response = data.get("response")
        if isinstance(response, dict):
            self._remember(response, kind)
        elif b"\n" not in event.data:
            return [_frame(event.event, event.data)]  # relayed as it came, without re-encoding
        return [_frame(event.event, dumps(data))]

    @property
    def ended(self) -> bool:
        """Whether a terminal event has been relayed (or our own failure written)."""
        return self._ended

    def finish(self) -> list[bytes]:
        if not self._ended:
            raise UpstreamProtocolError(
                f"Provider '{self.provider}' ended the stream before the response was complete."
            )
        return []

    def error(self, exc: GatewayError) -> bytes:
        """Return our in-band failure, numbered after the upstream's events (b"" once ended)."""
        if self._ended:
            return b""
        self._ended = True
        snapshot = dict(self.response or {"id": self.response_id, "object": "response"})
        snapshot["model"] = self.public_model
        snapshot["output"] = [self._items[index] for index in sorted(self._items)]
        events = failure_events(snapshot, exc)
        self.response = events[0]["response"]
        out = []
        for event in events:
            self._sequence += 1
            out.append(encode_event(numbered(event, self._sequence)))
        return b"".join(out)

    def _remember(self, response: dict[str, Any], kind: Any) -> None:
        if "model" in response:
            response["model"] = self.public_model
        if self.response_id is None and isinstance(response.get("id"), str):
            self.response_id = response["id"]
        self.response = response
        if kind in TERMINAL:
            usage = usage_from_responses(response.get("usage"))
            self.usage = usage if usage is not None else self.usage


def _frame(name: str | None, data: bytes) -> bytes:
    head = b"event: " + name.encode("utf-8") + b"\n" if name is not None else b""
    return head + b"data: " + data + b"\n\n"

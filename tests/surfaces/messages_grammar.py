"""An Anthropic Messages event-stream checker: asserts the order rules the SDKs and Claude Code rely on.

message_start first and once; blocks indexed 0, 1, 2 … in order, one open at a time, each stopped
before message_delta; deltas of the open block's kind (a thinking block signed last); message_delta
once, then message_stop last. ping may come anywhere after message_start. A stream may instead end
with one error event, after which nothing comes; a lone error event is a whole stream too.
Returns the message the events build, so tests can compare it with the SDK's.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.upstream.sse import Decoder

DELTA_KINDS = {
    "text_delta": "text",
    "input_json_delta": "tool_use",
    "thinking_delta": "thinking",
    "signature_delta": "thinking",
}


def events_of(raw: bytes) -> list[dict[str, Any]]:
    """Decode the stream; every event must have an event: line equal to its data's type."""
    decoder = Decoder()
    out = []
    for event in decoder.feed(raw) + decoder.flush():
        assert event.comment is None, "Messages streams carry events, not comments"
        assert event.data is not None and event.event is not None, f"an event without a name: {event}"
        data = json.loads(event.data)
        assert data["type"] == event.event, f"event: {event.event} carries type {data['type']}"
        out.append(data)
    assert raw.endswith(b"\n\n")
    return out


def check_stream(raw: bytes, tool_json: bool = True) -> dict[str, Any]:
    """Assert raw is a valid Anthropic event stream; return the accumulated message (or the error).

    tool_json=False accepts tool input that is not a JSON object: the writer relays a model's
    arguments as they come, so made-up chunks can make any text of them.
    """
    events = events_of(raw)
    assert events, "an empty stream"
    if events[0]["type"] == "error":
        assert len(events) == 1
        return events[0]
    checker = _Checker(tool_json)
    for i, event in enumerate(events):
        if event["type"] == "error":
            assert i == len(events) - 1, "nothing may follow an error event"
            assert checker.message_stop is False
            return event
        checker.feed(event)
    assert checker.message_stop, "the stream never sent message_stop"
    return checker.message


class _Checker:
    def __init__(self, tool_json: bool) -> None:
        self.tool_json = tool_json
        self.message: dict[str, Any] = {}
        self.open: int | None = None
        self.signed = False
        self.json = ""
        self.message_delta = False
        self.message_stop = False

    def feed(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        assert not self.message_stop, f"{kind} after message_stop"
        if kind == "message_start":
            assert not self.message, "two message_start events"
            message = event["message"]
            assert message["content"] == [] and message["stop_reason"] is None
            assert isinstance(message["usage"]["input_tokens"], int)
            self.message = message
            return
        assert self.message, f"{kind} before message_start"
        getattr(self, "_" + kind, self._unknown)(event)

    def _unknown(self, event: dict[str, Any]) -> None:
        raise AssertionError(f"unknown event type {event['type']}")

    def _ping(self, event: dict[str, Any]) -> None:
        assert event == {"type": "ping"}

    def _content_block_start(self, event: dict[str, Any]) -> None:
        assert self.open is None, "a block started while another was open"
        assert not self.message_delta
        assert event["index"] == len(self.message["content"]), "block indexes must count 0, 1, 2 …"
        block = dict(event["content_block"])
        assert block["type"] in ("text", "tool_use", "thinking", "redacted_thinking")
        if block["type"] == "tool_use":
            assert block["input"] == {} and block["id"] and isinstance(block["name"], str)
        self.message["content"].append(block)
        self.open, self.signed, self.json = event["index"], False, ""

    def _content_block_delta(self, event: dict[str, Any]) -> None:
        assert event["index"] == self.open, "a delta for a block that is not open"
        block, delta = self.message["content"][self.open], event["delta"]
        assert DELTA_KINDS[delta["type"]] == block["type"], f"{delta['type']} in a {block['type']} block"
        assert not self.signed, "a thinking block's signature is its last delta"
        if delta["type"] == "text_delta":
            block["text"] += delta["text"]
        elif delta["type"] == "input_json_delta":
            self.json += delta["partial_json"]
        elif delta["type"] == "thinking_delta":
            block["thinking"] += delta["thinking"]
        else:
            block["signature"] = delta["signature"]
            self.signed = True

    def _content_block_stop(self, event: dict[str, Any]) -> None:
        assert event["index"] == self.open, "a stop for a block that is not open"
        block = self.message["content"][self.open]
        if block["type"] == "thinking":
            assert self.signed and block["signature"], "a thinking block closed without a signature"
        if block["type"] == "tool_use" and self.json and self.tool_json:
            block["input"] = json.loads(self.json)
            assert isinstance(block["input"], dict), "tool input must be a JSON object"
        self.open = None

    def _message_delta(self, event: dict[str, Any]) -> None:
        assert self.open is None, "message_delta while a block is open"
        assert not self.message_delta, "two message_delta events"
        assert isinstance(event["delta"]["stop_reason"], str)
        assert isinstance(event["usage"]["output_tokens"], int)
        self.message_delta = True
        self.message["stop_reason"] = event["delta"]["stop_reason"]
        self.message["stop_sequence"] = event["delta"]["stop_sequence"]
        self.message["usage"] = {**self.message["usage"], **event["usage"]}

    def _message_stop(self, event: dict[str, Any]) -> None:
        assert self.message_delta, "message_stop without message_delta"
        self.message_stop = True

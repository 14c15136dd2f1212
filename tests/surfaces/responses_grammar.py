"""An event-grammar checker for Responses streams: the sequence stream.py's docstring draws.

check_stream(raw) asserts that raw bytes are one valid Responses stream and returns its events:
every frame is a comment or `event: <type>` with matching JSON data; sequence numbers rise by one;
response.created and response.in_progress come first; items are added at the next output index
and written one at a time, every event naming the open item's id, index and part; deltas add up
to their done texts; every added item is done before response.completed or response.incomplete
(a failed stream may leave one open); there is exactly one terminal event, and only an `error`
event may follow response.failed.
"""

from __future__ import annotations

import json
from typing import Any

TERMINAL = ("response.completed", "response.incomplete", "response.failed")
ITEM_EVENTS = {
    "reasoning": (
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
    ),
    "message": (
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
    ),
    "function_call": ("response.function_call_arguments.delta", "response.function_call_arguments.done"),
}


def parse(raw: bytes) -> list[dict[str, Any]]:
    """Return the data of every event in raw, asserting each frame's shape."""
    assert raw.endswith(b"\n\n"), "a stream ends with a blank line"
    events = []
    for block in raw[:-2].split(b"\n\n"):
        lines = block.split(b"\n")
        if all(line.startswith(b":") for line in lines):
            continue
        assert len(lines) == 2 and lines[0].startswith(b"event: ") and lines[1].startswith(b"data: "), block
        data = json.loads(lines[1][6:])
        assert data["type"] == lines[0][7:].decode(), block
        events.append(data)
    return events


def check_stream(raw: bytes, first_sequence: int | None = 0) -> list[dict[str, Any]]:
    """Assert raw is a valid Responses stream; return its events."""
    events = parse(raw)
    assert [e["type"] for e in events[:2]] == ["response.created", "response.in_progress"]
    start = events[0]["sequence_number"] if first_sequence is None else first_sequence
    assert [e["sequence_number"] for e in events] == list(range(start, start + len(events)))
    response_id = events[0]["response"]["id"]
    items = _Items()
    terminal = [i for i, e in enumerate(events) if e["type"] in TERMINAL]
    assert len(terminal) == 1, f"one terminal event, not {len(terminal)}"
    end = terminal[0]
    for event in events[: end + 1]:
        if "response" in event:
            assert event["response"]["id"] == response_id
        if event["type"] not in TERMINAL:
            items.feed(event)
    tail = [e["type"] for e in events[end + 1 :]]
    final = events[end]
    if final["type"] == "response.failed":
        assert tail in ([], ["error"]), tail
        assert final["response"]["error"]["message"]
    else:
        assert tail == [] and items.open is None, "every added item is done before the end"
        assert final["response"]["output"] == items.done
    assert [item["id"] for item in final["response"]["output"]] == items.ids
    return events


class _Items:
    """The output items seen so far, and the one being written."""

    def __init__(self) -> None:
        self.done: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.open: dict[str, Any] | None = None
        self.text = ""  # deltas of the open part (or summary, or arguments) so far
        self.part: str | None = None
        self.parts = 0

    def feed(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind in ("response.created", "response.in_progress"):
            assert event["response"]["status"] == "in_progress" and event["response"]["output"] == []
        elif kind == "response.output_item.added":
            assert self.open is None, "one item at a time"
            assert event["output_index"] == len(self.ids)
            assert event["item"]["id"] not in self.ids
            self.open, self.text, self.part, self.parts = event["item"], "", None, 0
            self.ids.append(event["item"]["id"])
        elif kind == "response.output_item.done":
            item = event["item"]
            assert (
                self.open is not None and item["id"] == self.open["id"] and item["type"] == self.open["type"]
            )
            assert event["output_index"] == len(self.done)
            if item["type"] == "function_call":
                assert item["arguments"] == self.text and item["call_id"] == self.open["call_id"]
            if item["type"] == "message":
                assert self.part is None and len(item["content"]) == self.parts
            self.done.append(item)
            self.open = None
        else:
            self.item_event(event)

    def item_event(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        assert self.open is not None, f"{kind} outside an item"
        assert kind in ITEM_EVENTS[self.open["type"]], f"{kind} inside a {self.open['type']} item"
        assert event["item_id"] == self.open["id"] and event["output_index"] == len(self.done)
        if "content_index" in event:
            assert event["content_index"] == self.parts
        if "summary_index" in event:
            assert event["summary_index"] == 0
        if kind.endswith("part.added"):
            assert self.part is None
            self.part, self.text = event["part"]["type"], ""
        elif kind.endswith(".delta"):
            self.text += event["delta"]
        elif kind.endswith("part.done"):
            assert self.part == event["part"]["type"]
            assert event["part"].get("text", event["part"].get("refusal")) == self.text
            self.part = None
            self.parts += 1
        else:
            done = event.get("text", event.get("refusal", event.get("arguments")))
            assert done == self.text, f"{kind} says {done!r}, the deltas {self.text!r}"

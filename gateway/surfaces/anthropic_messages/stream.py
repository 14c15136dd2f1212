"""Canonical chat.completion.chunk frames as Anthropic Messages stream events, one frame at a time.

The order is Anthropic's: message_start; for each block content_block_start, its deltas and
content_block_stop, one block open at a time; message_delta (stop reason and usage); message_stop.
A block is opened by the first piece of its kind (reasoning, text, or a new tool-call index) and
closed when another kind starts or the choice finishes. message_delta waits for [DONE] or the end
of the stream, because usage often comes after the finishing chunk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError, UpstreamError, UpstreamProtocolError
from gateway.providers.base import Usage
from gateway.surfaces.anthropic_messages import mapping
from gateway.surfaces.anthropic_messages.errors import error_type

PING = mapping.event({"type": "ping"})


@dataclass
class _Block:
    """The content block open now: its index, its kind, and whether its signature was sent."""

    index: int
    kind: str
    signed: bool = False


class MessagesStreamWriter:
    """One stream's state: the open block, tool-call indexes seen, the finish reason, usage so far."""

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id
        self.usage: Usage | None = None
        self.relayed_chars = 0  # characters of text, reasoning and tool calls, for an estimate
        self._started = False
        self._ended = False  # message_stop or an error event was written
        self._block: _Block | None = None
        self._blocks = 0
        self._tools: dict[int, int] = {}  # OpenAI tool-call index -> Anthropic block index
        self._finish: str | None = None
        self._stop_sequence: str | None = None

    def feed(self, frame: bytes) -> list[bytes]:
        """Return the Anthropic events for one canonical SSE frame."""
        if self._ended:
            return []
        if frame[:1] == b":":
            # A keep-alive comment: a ping keeps the client's idle timer from firing.
            return self._start(None) + [PING]
        payload = _payload(frame)
        if payload is None:
            return []
        if payload.strip() == b"[DONE]":
            return self._end()
        chunk = _parse(payload)
        if "error" in chunk:
            message = mapping.dict_of(chunk["error"]).get("message")
            raise UpstreamError(message if isinstance(message, str) else None)
        usage = mapping.usage_from(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        out = self._start(chunk)
        for choice in mapping.list_of(chunk.get("choices")):
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        return out

    def finish(self) -> list[bytes]:
        """End the stream; one that never finished its choice was cut short, and raises."""
        if self._ended:
            return []
        if self._finish is None:
            raise UpstreamProtocolError("The upstream ended the stream before the answer was complete.")
        return self._end()  # the answer is whole; only [DONE] is missing

    def error(self, exc: GatewayError) -> bytes:
        """Return Anthropic's in-band error event; nothing follows it."""
        self._ended = True
        detail = {"type": error_type(exc.status, exc), "message": exc.message}
        return mapping.event({"type": "error", "error": detail})

    def _start(self, chunk: dict[str, Any] | None) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        if self.message_id is None:
            self.message_id = mapping.message_id(chunk.get("id") if chunk else None)
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": mapping.anthropic_usage(self.usage),
        }
        return [mapping.event({"type": "message_start", "message": message})]

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        delta = mapping.dict_of(choice.get("delta"))
        out: list[bytes] = []
        reasoning, text, finish = (
            delta.get("reasoning_content"),
            delta.get("content"),
            choice.get("finish_reason"),
        )
        if isinstance(reasoning, str) and reasoning:
            out += self._thinking(reasoning)
        for block in mapping.list_of(delta.get("thinking_blocks")):
            if isinstance(block, dict):
                out += self._signed(block)
        if isinstance(text, str) and text:
            out += self._text(text)
        for call in mapping.list_of(delta.get("tool_calls")):
            if isinstance(call, dict):
                out += self._tool(call)
        if isinstance(finish, str):
            self._finish = finish
            self._stop_sequence = mapping.matched_stop(choice)
            out += self._close()
        return out

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._block = _Block(self._blocks, kind)
        self._blocks += 1
        return out + [
            mapping.event({"type": "content_block_start", "index": self._block.index, "content_block": block})
        ]

    def _delta(self, delta: dict[str, Any]) -> bytes:
        assert self._block is not None
        return mapping.event({"type": "content_block_delta", "index": self._block.index, "delta": delta})

    def _close(self) -> list[bytes]:
        block = self._block
        if block is None:
            return []
        out = []
        if block.kind == "thinking" and not block.signed:
            assert self.message_id is not None
            signature = mapping.unsigned_signature(self.message_id)
            out.append(self._delta({"type": "signature_delta", "signature": signature}))
        self._block = None
        return out + [mapping.event({"type": "content_block_stop", "index": block.index})]

    def _thinking(self, text: str) -> list[bytes]:
        self.relayed_chars += len(text)
        out = []
        if self._block is None or self._block.kind != "thinking" or self._block.signed:
            out = self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        return out + [self._delta({"type": "thinking_delta", "thinking": text})]

    def _signed(self, block: dict[str, Any]) -> list[bytes]:
        """Sign the open thinking block with an anthropic upstream's signature, or relay a whole one.

        The anthropic translator sends a signed block once, whole, after its reasoning deltas.
        """
        if block.get("type") == "redacted_thinking":
            data = block.get("data") if isinstance(block.get("data"), str) else ""
            return (
                self._open("redacted_thinking", {"type": "redacted_thinking", "data": data}) + self._close()
            )
        signature, text = block.get("signature"), block.get("thinking")
        if block.get("type") != "thinking" or not isinstance(signature, str):
            return []
        out = []
        if self._block is None or self._block.kind != "thinking" or self._block.signed:
            out = (
                self._thinking(text)
                if isinstance(text, str) and text
                else self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            )
        out.append(self._delta({"type": "signature_delta", "signature": signature}))
        assert self._block is not None
        self._block.signed = True
        return out + self._close()

    def _text(self, text: str) -> list[bytes]:
        self.relayed_chars += len(text)
        out = []
        if self._block is None or self._block.kind != "text":
            out = self._open("text", {"type": "text", "text": ""})
        return out + [self._delta({"type": "text_delta", "text": text})]

    def _tool(self, call: dict[str, Any]) -> list[bytes]:
        index = call.get("index")
        index = index if isinstance(index, int) else 0
        function = mapping.dict_of(call.get("function"))
        out = []
        if index not in self._tools:
            call_id, name = call.get("id"), function.get("name")
            name = name if isinstance(name, str) else ""
            # Ids pass through unchanged: Gemini's carry a thought signature the next turn needs.
            call_id = call_id if isinstance(call_id, str) and call_id else f"toolu_{self.message_id}_{index}"
            self.relayed_chars += len(name)
            out = self._open("tool_use", {"type": "tool_use", "id": call_id, "name": name, "input": {}})
            self._tools[index] = self._blocks - 1
        elif self._block is None or self._tools[index] != self._block.index:
            # Anthropic cannot reopen a closed block, and holding blocks back would buffer the stream.
            raise UpstreamProtocolError("The upstream interleaved the arguments of two tool calls.")
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self.relayed_chars += len(arguments)
            out.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return out

    def _end(self) -> list[bytes]:
        out = self._start(None) + self._close()
        self._ended = True
        reason = mapping.stop_reason(self._finish, self._stop_sequence, bool(self._tools))
        delta = {
            "stop_reason": reason,
            "stop_sequence": self._stop_sequence if reason == "stop_sequence" else None,
        }
        usage = mapping.anthropic_usage(self.usage)
        out.append(mapping.event({"type": "message_delta", "delta": delta, "usage": usage}))
        return out + [mapping.event({"type": "message_stop"})]


def _payload(frame: bytes) -> bytes | None:
    """Return the data of one `data: …` frame, or None for anything else."""
    if frame[:5] != b"data:":
        return None
    payload = frame[5:]
    return payload[1:] if payload[:1] == b" " else payload


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        chunk = json.loads(payload)
    except (ValueError, RecursionError):
        chunk = None
    if not isinstance(chunk, dict):
        raise UpstreamProtocolError("The upstream sent a stream chunk that is not a JSON object.")
    return chunk

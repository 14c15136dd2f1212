"""Anthropic's streamed Messages events translated to OpenAI chat.completion chunks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import UpstreamProtocolError
from gateway.providers.anthropic.mapping import FINISH, cut_usage, error_from, usage_from
from gateway.providers.base import StreamTranslator, Usage, as_object, text_weight
from gateway.providers.chunks import ChunkWriter
from gateway.providers.events import Event, encode_comment


class AnthropicStreamTranslator(StreamTranslator):
    """One stream's state: the message id, tool-call numbering, usage so far, the stop reason.

    Tool calls are numbered 0, 1, 2 … in the order they start; Anthropic's block index counts text
    and thinking blocks too, so a map from block index to call number is kept. Usage comes in two
    halves: input counts in message_start, the cumulative output count in message_delta.
    """

    def __init__(
        self,
        provider: ProviderConfig,
        public_model: str,
        client_usage: bool,
        clock: Callable[[], float],
        new_id: Callable[[], str],
    ) -> None:
        self.provider = provider
        self.clock = clock
        self.new_id = new_id
        self.out = ChunkWriter(public_model, client_usage)
        self.usage: Usage | None = None
        self.relayed_bytes = 0
        self._calls: dict[int, int] = {}  # Anthropic block index -> OpenAI tool-call index
        self._thinking: dict[int, dict[str, Any]] = {}  # block index -> thinking block so far
        self._finish: str | None = None
        self._done = False
        self._counts: dict[str, Any] = {}  # Anthropic's own usage fields, as they stand so far
        self._delta_seen = False  # until message_delta, message_start's output count is a placeholder

    def feed(self, event: Event) -> list[bytes]:
        if event.comment is not None or event.data is None or self._done:
            return []
        try:
            data = json.loads(event.data)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise UpstreamProtocolError(
                f"Provider '{self.provider.name}' sent a stream event that is not a JSON object."
            )
        kind = data.get("type") or event.event
        if kind == "error" or event.event == "error":
            raise error_from(self.provider, data, 502)
        if kind == "message_start":
            message = as_object(data.get("message"))
            self._count(message.get("usage"))
            return self.out.start(str(message.get("id") or ""), int(self.clock()))
        if kind == "ping":
            return [encode_comment(b": ping")]  # keeps idle timers between here and the client alive
        out = self.out.start("msg_" + self.new_id(), int(self.clock()))
        index = data.get("index")
        if kind == "content_block_start":
            out += self._block_start(index, data.get("content_block"))
        elif kind == "content_block_delta":
            out += self._block_delta(index, data.get("delta"))
        elif kind == "content_block_stop" and index in self._thinking:
            # Signed thinking goes to the client whole, once, so it can send it back on the next turn.
            out.append(self.out.delta({"thinking_blocks": [self._thinking.pop(index)]}))
        elif kind == "message_delta":
            self._message_delta(data)
        elif kind == "message_stop":
            return out + self._end()
        return out  # unknown event types are ignored, as Anthropic asks

    def finish(self) -> list[bytes]:
        if self._done:
            return []
        if self._finish is None:
            raise UpstreamProtocolError(
                f"Provider '{self.provider.name}' ended the stream before the answer was complete."
            )
        return self._end()  # message_delta came, so the answer is whole; only message_stop is missing

    def _block_start(self, index: Any, block: Any) -> list[bytes]:
        if not isinstance(block, dict):
            return []
        kind = block.get("type")
        if kind == "tool_use":
            number = self._calls[index] = len(self._calls)
            name = str(block.get("name") or "")
            self._relayed(text_weight(name))
            call = {"index": number, "id": block.get("id", ""), "type": "function"}
            call["function"] = {"name": name, "arguments": ""}
            return [self.out.delta({"tool_calls": [call]})]
        if kind in ("thinking", "redacted_thinking"):
            self._thinking[index] = dict(block)
        if kind == "text" and block.get("text"):
            return [self._text("content", block["text"])]
        return []

    def _block_delta(self, index: Any, delta: Any) -> list[bytes]:
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and isinstance(delta.get("text"), str):
            return [self._text("content", delta["text"])]
        if kind == "input_json_delta" and index in self._calls:
            piece = str(delta.get("partial_json") or "")
            self._relayed(text_weight(piece))
            call = {"index": self._calls[index], "function": {"arguments": piece}}
            return [self.out.delta({"tool_calls": [call]})] if piece else []
        if kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            block = self._thinking.setdefault(index, {"type": "thinking", "thinking": ""})
            block["thinking"] = (block.get("thinking") or "") + delta["thinking"]
            return [self._text("reasoning_content", delta["thinking"])]
        if kind == "signature_delta" and index in self._thinking:
            block = self._thinking[index]
            block["signature"] = (block.get("signature") or "") + str(delta.get("signature") or "")
        return []

    def _message_delta(self, data: dict[str, Any]) -> None:
        delta = as_object(data.get("delta"))
        if delta.get("stop_reason"):
            self._finish = FINISH.get(delta["stop_reason"], "stop")
        self._delta_seen = True
        self._count(data.get("usage"))

    def _count(self, usage: Any) -> None:
        """Merge Anthropic's usage fields into the counts so far, field by field.

        Counts are cumulative, so a later one replaces an earlier one; a field message_delta leaves
        out (the cache counts, often, when it repeats input_tokens) keeps its message_start value.
        Before message_delta the output is estimated from the text relayed (cut_usage).
        """
        if isinstance(usage, dict):
            self._counts.update((name, n) for name, n in usage.items() if n is not None)
        exact = usage_from(self._counts) if self._counts else None
        self.usage = exact if exact is None or self._delta_seen else cut_usage(exact, self.relayed_bytes)

    def _text(self, name: str, text: str) -> bytes:
        self._relayed(text_weight(text))
        return self.out.delta({name: text})

    def _relayed(self, size: int) -> None:
        self.relayed_bytes += size
        if not self._delta_seen and self._counts:  # no message_delta yet: the output is an estimate
            self._count(None)

    def _end(self) -> list[bytes]:
        self._done = True
        return self.out.end({0: self._finish or "stop"}, self.usage)

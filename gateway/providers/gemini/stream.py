"""Gemini's streamGenerateContent?alt=sse events translated to OpenAI chat.completion chunks.

Each event is a whole GenerateContentResponse holding only the new parts; there is no [DONE], the
stream just ends, after an event with finishReason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import UpstreamProtocolError
from gateway.providers.base import StreamTranslator, Usage, as_object, text_weight
from gateway.providers.chunks import ChunkWriter
from gateway.providers.events import Event
from gateway.providers.gemini.mapping import error_from, finish_reason, parts_to_message, usage_from


class GeminiStreamTranslator(StreamTranslator):
    """One stream's state: tool calls counted per candidate, finish reasons held, the last usage."""

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
        self._calls: dict[int, int] = {}  # candidate index -> tool calls sent so far
        self._finish: dict[int, str] = {}
        self._done = False

    def feed(self, event: Event) -> list[bytes]:
        if event.comment is not None or event.data is None or self._done:
            return []
        try:
            data = json.loads(event.data)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, list) and len(data) == 1:
            data = data[0]  # an error written as a JSON array, as without alt=sse
        if not isinstance(data, dict):
            raise UpstreamProtocolError(
                f"Provider '{self.provider.name}' sent a stream event that is not a JSON object."
            )
        if data.get("error"):
            raise error_from(self.provider, data, 502)
        ident = "chatcmpl-" + str(data.get("responseId") or self.new_id())
        out = self.out.start(ident, int(self.clock()))
        usage = usage_from(data.get("usageMetadata"))
        if usage is not None:
            self.usage = usage  # each event repeats the totals so far: keep the last
        for n, candidate in enumerate(data.get("candidates") or ()):
            if isinstance(candidate, dict):
                out += self._candidate(candidate.get("index", n), candidate)
        if not data.get("candidates") and (data.get("promptFeedback") or {}).get("blockReason"):
            self._finish[0] = "content_filter"
        return out

    def finish(self) -> list[bytes]:
        if self._done:
            return []
        if not self._finish:
            raise UpstreamProtocolError(
                f"Provider '{self.provider.name}' ended the stream before the answer was complete."
            )
        self._done = True
        return self.out.end(self._finish, self.usage)

    def _candidate(self, index: int, candidate: dict[str, Any]) -> list[bytes]:
        content = as_object(candidate.get("content"))
        text, reasoning, calls = parts_to_message(content.get("parts"), self.new_id)
        out = []
        if reasoning:
            self.relayed_bytes += text_weight(reasoning)
            out.append(self.out.delta({"reasoning_content": reasoning}, index))
        if text:
            self.relayed_bytes += text_weight(text)
            out.append(self.out.delta({"content": text}, index))
        if calls:
            # Gemini sends each call whole: one delta with its id, name and all of its arguments.
            first = self._calls.get(index, 0)
            for k, call in enumerate(calls):
                self.relayed_bytes += text_weight(call["function"]["arguments"])
                call["index"] = first + k
            self._calls[index] = first + len(calls)
            out.append(self.out.delta({"tool_calls": calls}, index))
        if candidate.get("finishReason"):
            self._finish[index] = finish_reason(candidate["finishReason"], index in self._calls)
        return out

"""Canonical chat.completion chunks as a Responses event stream: one writer per stream.

The grammar (openai-python's ResponseStreamState and Codex's event loop both rely on it):
response.created, response.in_progress, then one block per output item, in output order:
  reasoning      output_item.added, reasoning_summary_part.added, reasoning_summary_text.delta…,
                 reasoning_summary_text.done, reasoning_summary_part.done, output_item.done
  message        output_item.added, then per part content_part.added, output_text.delta… (or
                 refusal.delta…), output_text.done (refusal.done), content_part.done; output_item.done
  function_call  output_item.added, function_call_arguments.delta…, function_call_arguments.done,
                 output_item.done
and one terminal event: response.completed, response.incomplete (finish_reason length or
content_filter), or response.failed followed by an `error` event (see events.failure_events).
sequence_number counts every event from 0, as OpenAI's streams do. Comment frames pass through
as they are: SSE parsers skip them, and they keep idle timers between here and the client alive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.providers.base import Usage
from gateway.providers.events import encode_comment
from gateway.providers.responses.events import encode_event, failure_events, loads_object, numbered
from gateway.surfaces.responses.response import (
    INCOMPLETE,
    as_object,
    envelope,
    function_call_item,
    item_id,
    message_item,
    reasoning_item,
    refusal_part,
    text_part,
    usage_from_chat,
)

DELTA = {"output_text": "response.output_text.delta", "refusal": "response.refusal.delta"}
DONE = {"output_text": ("response.output_text.done", "text"), "refusal": ("response.refusal.done", "refusal")}


@dataclass
class _Open:
    """The output item being written: its shape so far, and the text of its open part."""

    item: dict[str, Any]
    index: int  # output_index
    part: str | None = None  # a message's open content part: "output_text" or "refusal"
    text: str = ""  # the open part's text, the reasoning summary so far, or the call's arguments
    call: int | None = None  # a function_call's canonical tool-call index


class ResponsesStreamWriter:
    """Turns one canonical SSE stream into Responses events; `response` is the object to store.

    feed() takes each canonical frame as the provider translator emits it and returns the events
    to send at once; finish() ends a stream whose answer finished; error() ends one that broke.
    Tool calls must arrive one after another, as every upstream we translate sends them: the
    events of one function_call item cannot be reopened once the next item has started.
    """

    def __init__(self, request: dict[str, Any], response_id: str, created_at: int) -> None:
        self.request = request
        self.response_id = response_id
        self.created_at = created_at
        self.usage: Usage | None = None
        self.response = envelope(request, response_id, created_at, [], None, status="in_progress")
        self._sequence = 0
        self._output: list[dict[str, Any]] = []
        self._open: _Open | None = None
        self._calls: set[int] = set()
        self._finish: str | None = None
        self._started = self._ended = False

    def feed(self, frame: bytes) -> list[bytes]:
        """Return the events for one canonical frame: a chunk, a comment or [DONE]."""
        line = frame.strip()
        if self._ended:
            return []
        if line.startswith(b":"):
            return [encode_comment(line)]
        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
            return []
        chunk = loads_object(line[5:])
        if chunk is None:
            raise UpstreamProtocolError("The upstream sent a stream chunk that is not a JSON object.")
        out = self._start()
        usage = usage_from_chat(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # a Responses request asks for one choice
            if isinstance(choice.get("delta"), dict):
                out += self._delta(choice["delta"])
            if choice.get("finish_reason"):
                self._finish = str(choice["finish_reason"])
        return out

    def finish(self) -> list[bytes]:
        """Close the last item and return the terminal event, once the canonical stream ended.

        :raises UpstreamProtocolError: when no finish_reason came (the caller then calls error()).
        """
        if self._ended:
            return []
        if self._finish is None:
            raise UpstreamProtocolError("The upstream ended the stream before the answer was complete.")
        out = self._start()
        if not self._output:
            out += self._open_message() + self._open_part("output_text")  # clients read "" as the text
        reason = INCOMPLETE.get(self._finish)
        out += self._close("incomplete" if reason else "completed")
        self._ended = True
        self.response = envelope(
            self.request, self.response_id, self.created_at, self._output, self.usage, reason
        )
        kind = "response.incomplete" if reason else "response.completed"
        return out + [self._event({"type": kind, "response": self.response})]

    def error(self, exc: GatewayError) -> bytes:
        """Return the in-band failure for a stream broken after its first byte (b"" once ended).

        Open items get no done events: Codex runs a function_call as soon as its item is done, and
        a cut call must not run. The failed response lists them as they stood, incomplete.
        """
        if self._ended:
            return b""
        out = self._start()
        self._ended = True
        output = list(self._output)
        if self._open is not None:
            output[self._open.index] = self._final(self._open, "incomplete")
        snapshot = envelope(
            self.request, self.response_id, self.created_at, output, self.usage, status="failed"
        )
        failed, error = failure_events(snapshot, exc)
        self.response = failed["response"]
        return b"".join(out + [self._event(failed), self._event(error)])

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [
            self._event({"type": "response.created", "response": self.response}),
            self._event({"type": "response.in_progress", "response": self.response}),
        ]

    def _delta(self, delta: dict[str, Any]) -> list[bytes]:
        out = []
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            out += self._reasoning(reasoning)
        for name, kind in (("content", "output_text"), ("refusal", "refusal")):
            text = delta.get(name)
            if isinstance(text, str) and text:
                out += self._text(kind, text)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out += self._call(call)
        return out

    def _reasoning(self, text: str) -> list[bytes]:
        out = []
        if self._open is None or self._open.item["type"] != "reasoning":
            out += self._close()
            index = len(self._output)
            out += self._add(
                _Open(reasoning_item(item_id(self.response_id, "reasoning", index), None), index)
            )
            out.append(
                self._item_event("response.reasoning_summary_part.added", summary_index=0, part=_summary(""))
            )
        self._current().text += text
        return out + [self._item_event("response.reasoning_summary_text.delta", summary_index=0, delta=text)]

    def _text(self, kind: str, text: str) -> list[bytes]:
        out = []
        if self._open is None or self._open.item["type"] != "message":
            out += self._close() + self._open_message()
        if self._current().part != kind:
            out += self._close_part() + self._open_part(kind)
        self._current().text += text
        extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
        return out + [self._item_event(DELTA[kind], content_index=self._content_index(), delta=text, **extra)]

    def _call(self, call: dict[str, Any]) -> list[bytes]:
        index = call.get("index", 0)
        if isinstance(index, bool) or not isinstance(index, int):
            raise UpstreamProtocolError("The upstream sent a tool call without an integer index.")
        function = as_object(call.get("function"))
        name = str(function.get("name") or "")
        out: list[bytes] = []
        if index not in self._calls:
            out += self._close()
            self._calls.add(index)
            n = len(self._output)
            given = call.get("id")
            call_id = given if isinstance(given, str) and given else item_id(self.response_id, "call", n)
            item = function_call_item(
                item_id(self.response_id, "function_call", n), call_id, name, "", "in_progress"
            )
            out += self._add(_Open(item, n, call=index))
        elif self._open is None or self._open.call != index:
            raise UpstreamProtocolError("The upstream interleaved the arguments of parallel tool calls.")
        elif name and not self._open.item["name"]:
            self._open.item["name"] = name  # a name that came after the call's first piece
        pieces = function.get("arguments")
        if isinstance(pieces, str) and pieces:
            self._current().text += pieces
            out.append(self._item_event("response.function_call_arguments.delta", delta=pieces))
        return out

    def _open_message(self) -> list[bytes]:
        index = len(self._output)
        return self._add(
            _Open(message_item(item_id(self.response_id, "message", index), [], "in_progress"), index)
        )

    def _open_part(self, kind: str) -> list[bytes]:
        self._current().part, self._current().text = kind, ""
        part = text_part("") if kind == "output_text" else refusal_part("")
        return [
            self._item_event("response.content_part.added", content_index=self._content_index(), part=part)
        ]

    def _close_part(self) -> list[bytes]:
        current = self._open
        if current is None or current.part is None:
            return []
        kind, index = current.part, self._content_index()
        part = text_part(current.text) if kind == "output_text" else refusal_part(current.text)
        done, field = DONE[kind]
        extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
        out = [
            self._item_event(done, content_index=index, **{field: current.text}, **extra),
            self._item_event("response.content_part.done", content_index=index, part=part),
        ]
        current.item["content"].append(part)
        current.part, current.text = None, ""
        return out

    def _close(self, status: str = "completed") -> list[bytes]:
        """Return the done events of the open item, which takes its final place in the output."""
        current = self._open
        if current is None:
            return []
        out = []
        kind = current.item["type"]
        if kind == "reasoning":
            out.append(
                self._item_event("response.reasoning_summary_text.done", summary_index=0, text=current.text)
            )
            out.append(
                self._item_event(
                    "response.reasoning_summary_part.done", summary_index=0, part=_summary(current.text)
                )
            )
        elif kind == "message":
            out += self._close_part()
        else:
            out.append(self._item_event("response.function_call_arguments.done", arguments=current.text))
        item = self._output[current.index] = self._final(current, status)
        self._open = None
        return out + [
            self._event({"type": "response.output_item.done", "output_index": current.index, "item": item})
        ]

    def _final(self, current: _Open, status: str) -> dict[str, Any]:
        """Return the item as it stands, an open part or summary included, with its status."""
        kind = current.item["type"]
        if kind == "reasoning":
            item = reasoning_item(current.item["id"], current.text)
            return item if status == "completed" else dict(item, status=status)
        if kind == "message":
            content = list(current.item["content"])
            if current.part is not None:
                content.append(
                    text_part(current.text) if current.part == "output_text" else refusal_part(current.text)
                )
            return dict(current.item, content=content, status=status)
        return dict(current.item, arguments=current.text, status=status)

    def _add(self, current: _Open) -> list[bytes]:
        self._open = current
        self._output.append(current.item)
        return [
            self._event(
                {"type": "response.output_item.added", "output_index": current.index, "item": current.item}
            )
        ]

    def _content_index(self) -> int:
        return len(self._current().item["content"])

    def _current(self) -> _Open:
        assert self._open is not None  # item events are only written inside an open item
        return self._open

    def _item_event(self, kind: str, **fields: Any) -> bytes:
        current = self._current()
        return self._event(
            {"type": kind, "item_id": current.item["id"], "output_index": current.index, **fields}
        )

    def _event(self, event: dict[str, Any]) -> bytes:
        data = encode_event(numbered(event, self._sequence))
        self._sequence += 1
        return data


def _summary(text: str) -> dict[str, str]:
    return {"type": "summary_text", "text": text}

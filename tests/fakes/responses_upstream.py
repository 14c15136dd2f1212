"""A fake upstream that serves the Responses API itself (as OpenAI does), playing the agent script.

POST /v1/responses, whole or streamed in OpenAI's event grammar, with its own store, so a
previous_response_id relayed natively finds its conversation here (and an unknown one is a 400,
as OpenAI answers). The script is agent_upstream's: a tool result in the conversation is answered
with its secret word; a file-reading tool on offer (Read, exec_command) is called on the first
path in the latest user text; else a short text. Also /v1/responses/input_tokens.
"""

from __future__ import annotations

import threading
from typing import Any

from tests.fakes.agent_upstream import (
    PROMPT_TOKENS,
    SECRET,
    _Agent,
    _sse,
    _text_of,
    decide,
    tool_arguments,
    tool_for,
)
from tests.fakes.loopback import Exchange, Handler
from tests.fakes.script import Billed


def _items(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    return [item for item in raw or () if isinstance(item, dict)]


class AgentResponses(_Agent):
    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._next = 0

    def messages_calls(self) -> list[Exchange]:
        return [ex for ex in self.exchanges if ex.path == "/v1/responses"]

    def handle(self, handler: Handler, ex: Exchange) -> None:
        body = ex.body
        if ex.headers.get("authorization") != f"Bearer {SECRET}" or not isinstance(body, dict):
            handler.send_json(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
            return
        if ex.path == "/v1/responses/input_tokens":
            handler.send_json(200, {"object": "response.input_tokens", "input_tokens": PROMPT_TOKENS})
            return
        previous = body.get("previous_response_id")
        with self._lock:
            history = self.stored.get(previous, []) if previous else []
        if previous and not history:
            error = {
                "message": f"Previous response with id '{previous}' not found.",
                "type": "invalid_request_error",
            }
            handler.send_json(
                400, {"error": dict(error, param="previous_response_id", code="previous_response_not_found")}
            )
            return
        items = history + _items(body.get("input"))
        names = [t.get("name") for t in body.get("tools") or () if isinstance(t, dict)]
        if not self._guard(handler, bool(names)):
            return
        users = [i for i in items if i.get("type", "message") == "message" and i.get("role") == "user"]
        results = [str(i.get("output")) for i in items if i.get("type") == "function_call_output"]
        tool = tool_for(names)
        turn = decide(_text_of(users[-1].get("content")) if users else "", results, tool is not None)
        with self._lock:
            self._next += 1
            response_id = f"resp_fake{self._next}"
        if turn.text is not None:
            part = {"type": "output_text", "text": turn.text, "annotations": []}
            item = {
                "id": f"msg_{self._next}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        else:
            item = {
                "id": f"fc_{self._next}",
                "type": "function_call",
                "status": "completed",
                "call_id": f"call_fake{self._next}",
                "name": tool,
                "arguments": tool_arguments(tool, turn.path),
            }
        usage = {
            "input_tokens": PROMPT_TOKENS,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": turn.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": PROMPT_TOKENS + turn.completion_tokens,
        }
        ex.billed = Billed(PROMPT_TOKENS, turn.completion_tokens)
        response = {
            "id": response_id,
            "object": "response",
            "created_at": 1700000000,
            "status": "completed",
            "model": body.get("model"),
            "output": [item],
            "usage": usage,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "tools": body.get("tools") or [],
            "tool_choice": body.get("tool_choice") or "auto",
            "parallel_tool_calls": True,
            "metadata": {},
        }
        if body.get("store") is not False:
            with self._lock:
                self.stored[response_id] = items + [item]
        if not body.get("stream"):
            handler.send_json(200, response)
            return
        handler.start_stream()
        for event in _events(response, item):
            handler.write(_sse(event["type"], event))
        handler.end_stream()


def _events(response: dict[str, Any], item: dict[str, Any]) -> list[dict[str, Any]]:
    start = dict(response, status="in_progress", output=[], usage=None)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
    ]
    if item["type"] == "message":
        text = item["content"][0]["text"]
        empty = {"type": "output_text", "text": "", "annotations": []}
        events += [
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": dict(item, status="in_progress", content=[]),
            },
            {
                "type": "response.content_part.added",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "part": empty,
            },
            {
                "type": "response.output_text.delta",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": text,
                "logprobs": [],
            },
            {
                "type": "response.output_text.done",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            },
            {
                "type": "response.content_part.done",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "part": item["content"][0],
            },
        ]
    else:
        events += [
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": dict(item, status="in_progress", arguments=""),
            },
            {
                "type": "response.function_call_arguments.delta",
                "item_id": item["id"],
                "output_index": 0,
                "delta": item["arguments"],
            },
            {
                "type": "response.function_call_arguments.done",
                "item_id": item["id"],
                "output_index": 0,
                "arguments": item["arguments"],
            },
        ]
    events += [
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": response},
    ]
    return [{"type": e["type"], "sequence_number": n, **e} for n, e in enumerate(events)]

"""A fake Anthropic Messages API on 127.0.0.1 (wire format: docs/wire-formats.md#anthropic-messages-upstream).

POST /v1/messages with x-api-key and anthropic-version, plays tests/fakes/script.py, and reports
usage the way Anthropic does: input split into uncached, cache-write and cache-read counts, output
in message_delta. A wrong key gets Anthropic's 401 authentication_error.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes import script
from tests.fakes.loopback import Exchange, Handler, LoopbackServer

SECRET = "sk-ant-fake-secret"
CACHE_READ = 2  # tokens of each prompt reported as read from the cache
CACHE_WRITE = 1


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    out = []
    for block in content or ():
        if block.get("type") == "text":
            out.append(block["text"])
        elif block.get("type") == "tool_result":
            out.append(block["content"] if isinstance(block["content"], str) else "")
    return out


class FakeAnthropic(LoopbackServer):
    prefix = "/v1"

    def handle(self, handler: Handler, ex: Exchange) -> None:
        if ex.headers.get("x-api-key") != SECRET:
            error = {"type": "authentication_error", "message": "invalid x-api-key"}
            handler.send_json(401, {"type": "error", "error": error, "request_id": "req_fake"})
            return
        body = ex.body
        # A date: the gateway's default is 2023-06-01; a Messages client's own goes up as sent
        # (anthropic-sdk-python 2.x sends 2026-10-21).
        version = re.fullmatch(r"\d{4}-\d{2}-\d{2}", ex.headers.get("anthropic-version", ""))
        ok = handler.path == "/v1/messages" and version is not None
        if not ok or not isinstance(body, dict) or not isinstance(body.get("max_tokens"), int):
            error = {"type": "invalid_request_error", "message": "bad request to the fake"}
            handler.send_json(400, {"type": "error", "error": error})
            return
        last = body["messages"][-1]["content"]
        results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"]
        user_text = " ".join(_texts(last))
        answer = script.reply(user_text, results[0]["content"] if results else None, bool(body.get("tools")))
        texts = [body.get("system") or ""] + [t for m in body["messages"] for t in _texts(m["content"])]
        prompt = script.prompt_tokens(texts)
        usage = {
            "input_tokens": prompt - CACHE_READ - CACHE_WRITE,
            "cache_creation_input_tokens": CACHE_WRITE,
            "cache_read_input_tokens": CACHE_READ,
            "output_tokens": answer.completion_tokens,
        }
        ex.billed = script.Billed(prompt, answer.completion_tokens, CACHE_READ)
        stop = "end_turn" if answer.text is not None else "tool_use"
        if not body.get("stream"):
            if answer.text is not None:
                content = [{"type": "text", "text": answer.text}]
            else:
                tool = {"type": "tool_use", "id": "toolu_fake1", "name": script.TOOL_NAME}
                content = [dict(tool, input=json.loads(script.TOOL_ARGUMENTS))]
            message = {"id": "msg_fake", "type": "message", "role": "assistant", "model": body["model"]}
            handler.send_json(200, dict(message, content=content, stop_reason=stop, usage=usage))
            return
        handler.start_stream()
        start = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": body["model"],
        }
        first = dict(usage, output_tokens=1)
        handler.write(_event("message_start", {"type": "message_start", "message": dict(start, usage=first)}))
        handler.write(_event("ping", {"type": "ping"}))
        if answer.text is not None:
            block = {"type": "text", "text": ""}
            deltas = [
                {"type": "text_delta", "text": w if i == 0 else " " + w}
                for i, w in enumerate(answer.text.split())
            ]
        else:
            block = {"type": "tool_use", "id": "toolu_fake1", "name": script.TOOL_NAME, "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in script.ARGUMENT_PIECES]
        handler.write(
            _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
        )
        for delta in deltas:
            handler.write(
                _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            )
        handler.write(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
        handler.write(_event("message_delta", dict(delta, usage={"output_tokens": answer.completion_tokens})))
        handler.write(_event("message_stop", {"type": "message_stop"}))
        handler.end_stream()

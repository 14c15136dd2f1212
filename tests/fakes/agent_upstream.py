"""Fake upstreams scripted for a coding agent's tool round trip, in three wire formats, on 127.0.0.1.

The script, whatever the format (docs/client-surfaces.md; Claude Code's requests as observed in
shared/reference/agent-clients.md):
  - the conversation holds a tool result: answer "The secret word is <word>.", the word read from
    the latest result with SECRET_WORD (the file's content, as the agent's Read tool returned it);
  - tools are offered (a tool named Read among them): call Read with the first absolute path in the
    latest user text;
  - anything else (a side request): a short text.
After MAX_MAIN tool-offering requests the fake refuses with a 400, so a client stuck in a loop
fails fast instead of running up requests. Streams are always as the request asks; usage is
reported in each format's own fields, and every request is recorded with what it was billed.

    AgentAnthropic  POST /v1/messages (events as Anthropic sends them) and /v1/messages/count_tokens;
                    the model "slow" streams a word every 50 ms until the client hangs up
    AgentOpenAI     POST /v1/chat/completions (chunks and a usage chunk); Codex's exec_command
                    runs `cat <path>` where Claude Code's Read would read it
    AgentGemini     POST /v1beta/models/{m}:generateContent and :streamGenerateContent?alt=sse
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from tests.fakes.loopback import Exchange, Handler, LoopbackServer
from tests.fakes.script import Billed

SECRET = "sk-fake-agent-upstream"
SECRET_WORD = re.compile(r"secret word is:?\s*([A-Za-z0-9_-]+)")
PATH = re.compile(r"(/[^\s'\"`]+\.txt)")
MAX_MAIN = 8
PROMPT_TOKENS = 42  # what each fake reports as the prompt, whatever it was sent
CACHE_READ = 30  # of which read from the cache (the Anthropic fake only)
CALL_ID = "toolu_agent_1"
SLOW_MODEL = "slow"
TICK = 0.05
MAX_SLOW_WORDS = 400
GEMINI_PATH = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent\?alt=sse)$")


@dataclass(frozen=True)
class Turn:
    text: str | None  # None: call Read with path
    path: str = ""

    @property
    def completion_tokens(self) -> int:
        return len(self.text.split()) if self.text is not None else 12


def decide(last_user_text: str, tool_results: list[str], offers_read: bool) -> Turn:
    """Return the model's next turn from what the agent sent."""
    if tool_results:
        found = SECRET_WORD.search(tool_results[-1])
        return Turn(f"The secret word is {found.group(1)}." if found else "The file has no secret word.")
    path = PATH.search(last_user_text)
    if offers_read and path:
        return Turn(None, path.group(1))
    return Turn("Nothing to do.")


def tool_for(names: list[Any]) -> str | None:
    """Return the file-reading tool on offer: Claude Code's Read, or Codex's exec_command."""
    return next((name for name in ("Read", "exec_command") if name in names), None)


def tool_arguments(tool: str | None, path: str) -> str:
    """Return the arguments that make the tool show the file."""
    return json.dumps({"cmd": f"cat {path}"} if tool == "exec_command" else {"file_path": path})


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif isinstance(block, dict) and block.get("type") == "tool_result":
            parts.append(_text_of(block.get("content")))
    return "\n".join(parts)


def _response_text(response: Any) -> str:
    """Return a Gemini functionResponse's text: the gateway wraps a tool's output as {"content": …}."""
    content = response.get("content") if isinstance(response, dict) else None
    return content if isinstance(content, str) else json.dumps(response)


def _sse(name: str | None, data: dict[str, Any]) -> bytes:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class _Agent(LoopbackServer):
    """The shared script bookkeeping: a loop guard and the billed usage of each exchange."""

    prefix = "/v1"

    def __init__(self) -> None:
        super().__init__()
        self.main_requests = 0
        self._count_lock = threading.Lock()

    def messages_calls(self) -> list[Exchange]:
        """Return the generation requests (not count_tokens) received so far."""
        return [ex for ex in self.exchanges if "count_tokens" not in ex.path]

    @staticmethod
    def streamed(ex: Exchange) -> bool:
        """Tell whether a request asked for a stream: in its body, or (Gemini) in its method."""
        return (
            "streamGenerateContent" in ex.path or isinstance(ex.body, dict) and ex.body.get("stream") is True
        )

    def _guard(self, handler: Handler, offers_tools: bool) -> bool:
        if not offers_tools:
            return True
        with self._count_lock:
            self.main_requests += 1
            if self.main_requests <= MAX_MAIN:
                return True
        handler.send_json(
            400,
            {"type": "error", "error": {"type": "invalid_request_error", "message": "fake loop guard"}},
            {"x-should-retry": "false"},
        )
        return False


class AgentAnthropic(_Agent):
    """Also SLOW_MODEL: one word every TICK seconds, max_tokens of them, until the client hangs up."""

    def __init__(self) -> None:
        super().__init__()
        self.hung_up: list[Exchange] = []  # slow streams whose client went away mid-answer

    def handle(self, handler: Handler, ex: Exchange) -> None:
        body = ex.body
        if ex.headers.get("x-api-key") != SECRET or not isinstance(body, dict):
            error = {"type": "authentication_error", "message": "invalid x-api-key"}
            handler.send_json(401, {"type": "error", "error": error})
            return
        if handler.path == "/v1/messages/count_tokens":
            handler.send_json(200, {"input_tokens": PROMPT_TOKENS})
            return
        if body.get("model") == SLOW_MODEL:
            self._slow(handler, ex, min(int(body.get("max_tokens") or 0), MAX_SLOW_WORDS))
            return
        messages = body.get("messages") or []
        users = [m for m in messages if m.get("role") == "user"]
        results = [
            _text_of(b.get("content"))
            for m in users
            for b in (m.get("content") if isinstance(m.get("content"), list) else ())
            if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
        names = [t.get("name") for t in body.get("tools") or ()]
        if not self._guard(handler, bool(names)):
            return
        tool = tool_for(names)
        turn = decide(_text_of(users[-1]["content"]) if users else "", results, tool is not None)
        usage = {
            "input_tokens": PROMPT_TOKENS - CACHE_READ,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": CACHE_READ,
            "output_tokens": turn.completion_tokens,
        }
        ex.billed = Billed(PROMPT_TOKENS, turn.completion_tokens, CACHE_READ)
        block: dict[str, Any]
        if turn.text is not None:
            block, deltas = {"type": "text", "text": ""}, [{"type": "text_delta", "text": turn.text}]
        else:
            block = {"type": "tool_use", "id": CALL_ID, "name": tool or "Read", "input": {}}
            arguments = tool_arguments(tool, turn.path)
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in (arguments[:5], arguments[5:])]
        stop = "end_turn" if turn.text is not None else "tool_use"
        message = {"id": "msg_agent", "type": "message", "role": "assistant", "model": body.get("model")}
        if not body.get("stream"):
            whole = (
                dict(block, text=turn.text)
                if turn.text is not None
                else dict(block, input=json.loads(tool_arguments(tool, turn.path)))
            )
            handler.send_json(
                200, dict(message, content=[whole], stop_reason=stop, stop_sequence=None, usage=usage)
            )
            return
        handler.start_stream()
        start = dict(
            message, content=[], stop_reason=None, stop_sequence=None, usage=dict(usage, output_tokens=1)
        )
        events = [
            ("message_start", {"type": "message_start", "message": start}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
            *(
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
                for d in deltas
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": turn.completion_tokens},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        for name, data in events:
            handler.write(_sse(name, data))
        handler.end_stream()

    def _slow(self, handler: Handler, ex: Exchange, words: int) -> None:
        handler.start_stream()
        usage = {"input_tokens": PROMPT_TOKENS, "output_tokens": 1}
        message = {"id": "msg_slow", "type": "message", "role": "assistant", "content": [], "usage": usage}
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        try:
            handler.write(_sse("message_start", {"type": "message_start", "message": message}))
            handler.write(_sse("content_block_start", block))
            for i in range(words):
                delta = {"type": "text_delta", "text": f" w{i}"}
                handler.write(
                    _sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
                )
                handler.wfile.flush()
                time.sleep(TICK)
        except OSError:
            handler.close_connection = True
            self.hung_up.append(ex)
            return
        handler.write(_sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
        end = {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"output_tokens": words},
        }
        handler.write(_sse("message_delta", end))
        handler.write(_sse("message_stop", {"type": "message_stop"}))
        handler.end_stream()


class AgentOpenAI(_Agent):
    def handle(self, handler: Handler, ex: Exchange) -> None:
        body = ex.body
        if ex.headers.get("authorization") != f"Bearer {SECRET}" or not isinstance(body, dict):
            handler.send_json(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
            return
        messages = body.get("messages") or []
        users = [m for m in messages if m.get("role") == "user"]
        results = [_text_of(m.get("content")) for m in messages if m.get("role") == "tool"]
        names = [t.get("function", {}).get("name") for t in body.get("tools") or ()]
        if not self._guard(handler, bool(names)):
            return
        tool = tool_for(names)
        turn = decide(_text_of(users[-1]["content"]) if users else "", results, tool is not None)
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": turn.completion_tokens,
            "total_tokens": PROMPT_TOKENS + turn.completion_tokens,
        }
        ex.billed = Billed(PROMPT_TOKENS, turn.completion_tokens)
        finish = "stop" if turn.text is not None else "tool_calls"
        call = {
            "id": "call_agent_1",
            "type": "function",
            "function": {"name": tool or "Read", "arguments": tool_arguments(tool, turn.path)},
        }
        head = {"id": "chatcmpl-agent", "created": 1700000000, "model": body.get("model")}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": turn.text}
            if turn.text is None:
                message["tool_calls"] = [call]
            choice = {"index": 0, "message": message, "finish_reason": finish}
            handler.send_json(200, dict(head, object="chat.completion", choices=[choice], usage=usage))
            return
        handler.start_stream()
        delta: dict[str, Any] = {"role": "assistant", "content": turn.text}
        if turn.text is None:
            delta["tool_calls"] = [dict(call, index=0)]
        for choices in (
            [{"index": 0, "delta": delta, "finish_reason": None}],
            [{"index": 0, "delta": {}, "finish_reason": finish}],
        ):
            handler.write(_sse(None, dict(head, object="chat.completion.chunk", choices=choices)))
        handler.write(_sse(None, dict(head, object="chat.completion.chunk", choices=[], usage=usage)))
        handler.write(b"data: [DONE]\n\n")
        handler.end_stream()


class AgentGemini(_Agent):
    prefix = "/v1beta"

    def handle(self, handler: Handler, ex: Exchange) -> None:
        body = ex.body
        match = GEMINI_PATH.match(handler.path)
        if ex.headers.get("x-goog-api-key") != SECRET or not isinstance(body, dict) or match is None:
            handler.send_json(
                400, {"error": {"code": 400, "message": "bad key or path", "status": "INVALID_ARGUMENT"}}
            )
            return
        contents = body.get("contents") or []
        users = [c for c in contents if c.get("role") == "user"]
        results = [
            _response_text(p["functionResponse"].get("response"))
            for c in users
            for p in c.get("parts") or ()
            if "functionResponse" in p
        ]
        texts = [p["text"] for p in (users[-1].get("parts") or ()) if "text" in p] if users else []
        names = [d.get("name") for t in body.get("tools") or () for d in t.get("functionDeclarations") or ()]
        if not self._guard(handler, bool(names)):
            return
        tool = tool_for(names)
        turn = decide("\n".join(texts), results, tool is not None)
        usage = {
            "promptTokenCount": PROMPT_TOKENS,
            "candidatesTokenCount": turn.completion_tokens,
            "totalTokenCount": PROMPT_TOKENS + turn.completion_tokens,
        }
        ex.billed = Billed(PROMPT_TOKENS, turn.completion_tokens)
        part: dict[str, Any] = (
            {"text": turn.text}
            if turn.text is not None
            else {
                "functionCall": {"name": tool or "Read", "args": json.loads(tool_arguments(tool, turn.path))}
            }
        )
        candidate = {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
        answer = {"candidates": [candidate], "usageMetadata": usage, "responseId": "agent-1"}
        if match.group(2) == "generateContent":
            handler.send_json(200, answer)
            return
        handler.start_stream()
        handler.write(b"data: " + json.dumps(answer).encode() + b"\r\n\r\n")
        handler.end_stream()

"""The same-script conversation (tests/fakes/script.py) for the OpenAI-format fake, in three flavours.

    openai     /v1/chat/completions: plain OpenAI
    deepseek   /chat/completions (DeepSeek has no /v1): blank lines before a whole body, a
               ': keep-alive' comment and reasoning_content deltas before a stream, cache-hit usage
    azure      /openai/deployments/{model}/chat/completions?api-version=…: the api-key header, and a
               first stream chunk with empty choices carrying prompt_filter_results

tests/fakes/upstream.py hands requests for models named script*, or with tools, or on the deepseek
and azure paths, to answer(); streams go out through the loopback handler's checked send_event.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes import script
from tests.fakes.loopback import Exchange, Handler, data_event

AZURE_PATH = re.compile(r"^/openai/deployments/([^/?]+)/chat/completions\?api-version=[\w.-]+$")
CACHE_HIT = 2  # DeepSeek: prompt tokens reported as cache hits
REASONING = "Thinking."


def flavour_of(path: str) -> str | None:
    if path == "/v1/chat/completions":
        return "openai"
    if path == "/v1/embeddings":
        return "embeddings"
    if path == "/chat/completions":
        return "deepseek"
    return "azure" if AZURE_PATH.match(path) else None


def _text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _usage(flavour: str, prompt: int, completion: int) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if flavour == "deepseek":
        usage.update(prompt_cache_hit_tokens=CACHE_HIT, prompt_cache_miss_tokens=prompt - CACHE_HIT)
    return usage


def answer(handler: Handler, ex: Exchange, flavour: str) -> None:
    """Answer one chat request with the script, whole or streamed, in the flavour's manner."""
    from tests.fakes.upstream import SECRET  # upstream.py imports this module

    body = ex.body
    if flavour == "embeddings":
        _embeddings(handler, ex)
        return
    if flavour == "azure" and (
        ex.headers.get("api-key") != SECRET or AZURE_PATH.match(handler.path).group(1) != body.get("model")
    ):
        handler.send_json(401, {"error": {"code": "401", "message": "Access denied due to invalid key."}})
        return
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    tool_result = _text(last.get("content")) if last.get("role") == "tool" else None
    users = [m for m in messages if m.get("role") == "user"]
    answer = script.reply(_text(users[-1]["content"]) if users else "", tool_result, bool(body.get("tools")))
    prompt = script.prompt_tokens([_text(m.get("content")) for m in messages])
    usage = _usage(flavour, prompt, answer.completion_tokens)
    ex.reported_usage = usage
    ex.billed = script.Billed(prompt, answer.completion_tokens, CACHE_HIT if flavour == "deepseek" else 0)
    finish = "stop" if answer.text is not None else "tool_calls"
    call = {"id": "call_fake1", "type": "function", "function": {"name": script.TOOL_NAME}}
    head = {"id": "chatcmpl-fake", "created": 1700000000, "model": body["model"]}
    if not ex.stream:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
        if answer.text is None:
            message["tool_calls"] = [
                dict(call, function=dict(call["function"], arguments=script.TOOL_ARGUMENTS))
            ]
        if flavour == "deepseek":
            message["reasoning_content"] = REASONING
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        payload = json.dumps(dict(head, object="chat.completion", choices=[choice], usage=usage)).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        prefix = b"\n\n\n" if flavour == "deepseek" else b""  # DeepSeek's queueing keep-alive
        handler.send_header("Content-Length", str(len(prefix + payload)))
        handler.end_headers()
        handler.wfile.write(prefix + payload)
        ex.outcome = "complete"
        return

    def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return data_event(dict(head, object="chat.completion.chunk", choices=[choice]))

    handler.start_stream()
    if flavour == "azure":
        filters = [{"prompt_index": 0, "content_filter_results": {}}]
        first = {"id": "", "created": 0, "model": "", "object": "", "choices": []}
        handler.send_event(data_event(dict(first, prompt_filter_results=filters)))
    if flavour == "deepseek":
        handler.send_event(b": keep-alive\n\n")
    handler.send_event(chunk({"role": "assistant", "content": ""}))
    if flavour == "deepseek":
        handler.send_event(chunk({"content": None, "reasoning_content": REASONING}))
    if answer.text is not None:
        for i, word in enumerate(answer.text.split()):
            handler.send_event(chunk({"content": word if i == 0 else " " + word}))
    else:
        first = dict(call, index=0, function=dict(call["function"], arguments=""))
        handler.send_event(chunk({"tool_calls": [first]}))
        for piece in script.ARGUMENT_PIECES:
            handler.send_event(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    handler.send_event(chunk({}, finish))
    if (body.get("stream_options") or {}).get("include_usage"):
        handler.send_event(data_event(dict(head, object="chat.completion.chunk", choices=[], usage=usage)))
    handler.send_event(data_event(b"[DONE]"))
    handler.end_stream()
    ex.outcome = "complete"


def _embeddings(handler: Handler, ex: Exchange) -> None:
    """Answer floats only: like some compatible servers, refuse encoding_format."""
    if "encoding_format" in ex.body:
        handler.send_json(400, {"error": {"message": "encoding_format is not supported"}})
        return
    texts = ex.body["input"] if isinstance(ex.body["input"], list) else [ex.body["input"]]
    data = [{"object": "embedding", "index": i, "embedding": [0.5, -0.25, 1.0]} for i in range(len(texts))]
    prompt = sum(len(str(t).split()) for t in texts)
    usage = {"prompt_tokens": prompt, "total_tokens": prompt}
    ex.billed = script.Billed(prompt, 0)
    handler.send_json(200, {"object": "list", "model": ex.body["model"], "data": data, "usage": usage})
    ex.outcome = "complete"

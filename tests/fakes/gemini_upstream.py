"""A fake Gemini API on 127.0.0.1 (wire format: docs/wire-formats.md#gemini-generatecontent-upstream).

POST /v1beta/models/{model}:generateContent and :streamGenerateContent?alt=sse (CRLF framing, no
[DONE]), and :batchEmbedContents; x-goog-api-key. A wrong key gets Google's 400 API_KEY_INVALID.
Plays tests/fakes/script.py; thoughts are reported apart from candidates, as Gemini does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes import script
from tests.fakes.loopback import Exchange, Handler, LoopbackServer

SECRET = "AIza-fake-gemini-secret"
THOUGHTS = 3  # thinking tokens reported with every answer
SIGNATURE = "c2lnbmF0dXJl"
_PATH = re.compile(
    r"^/v1beta/models/([^/:]+):(generateContent|streamGenerateContent\?alt=sse|batchEmbedContents)$"
)


def _texts(parts: list[dict[str, Any]]) -> list[str]:
    out = []
    for part in parts:
        if "text" in part:
            out.append(part["text"])
        elif "functionResponse" in part:
            out.append(json.dumps(part["functionResponse"]["response"]))
    return out


def _frame(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\r\n\r\n"


class FakeGemini(LoopbackServer):
    prefix = "/v1beta"

    def handle(self, handler: Handler, ex: Exchange) -> None:
        match = _PATH.match(handler.path)
        if ex.headers.get("x-goog-api-key") != SECRET:
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
            error = {
                "code": 400,
                "message": "API key not valid.",
                "status": "INVALID_ARGUMENT",
                "details": details,
            }
            handler.send_json(400, {"error": error})
            return
        if match is None or not isinstance(ex.body, dict):
            handler.send_json(
                404, {"error": {"code": 404, "message": "no such method", "status": "NOT_FOUND"}}
            )
            return
        if match.group(2) == "batchEmbedContents":
            self._embed(handler, ex)
            return
        body = ex.body
        last = body["contents"][-1]["parts"]
        results = [p["functionResponse"]["response"] for p in last if "functionResponse" in p]
        tool_result = results[0].get("content", json.dumps(results[0])) if results else None
        user_text = " ".join(p.get("text", "") for p in last)
        answer = script.reply(user_text, tool_result, bool(body.get("tools")))
        system = [p["text"] for p in (body.get("systemInstruction") or {}).get("parts", [])]
        prompt = script.prompt_tokens(system + [t for c in body["contents"] for t in _texts(c["parts"])])
        usage = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": answer.completion_tokens,
            "thoughtsTokenCount": THOUGHTS,
            "totalTokenCount": prompt + answer.completion_tokens + THOUGHTS,
        }
        ex.billed = script.Billed(prompt, answer.completion_tokens + THOUGHTS)
        if answer.text is not None:
            parts = [{"text": answer.text}]
        else:
            call = {"name": script.TOOL_NAME, "args": json.loads(script.TOOL_ARGUMENTS)}
            parts = [{"functionCall": call, "thoughtSignature": SIGNATURE}]
        if match.group(2) == "generateContent":
            candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            handler.send_json(
                200, {"candidates": [candidate], "usageMetadata": usage, "responseId": "fake-1"}
            )
            return
        handler.start_stream()
        if answer.text is not None:
            first, _, rest = answer.text.partition(" ")
            pieces = [[{"text": first}]] + ([[{"text": " " + rest}]] if rest else [])
        else:
            pieces = [parts]
        for i, piece in enumerate(pieces):
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": piece}, "index": 0}
            event: dict[str, Any] = {"candidates": [candidate], "responseId": "fake-1"}
            if i == len(pieces) - 1:
                candidate["finishReason"] = "STOP"
                event["usageMetadata"] = usage
            handler.write(_frame(event))
        handler.end_stream()

    def _embed(self, handler: Handler, ex: Exchange) -> None:
        vectors = [
            {"values": [0.5, -0.25, float(len(r["content"]["parts"][0]["text"]))]}
            for r in ex.body["requests"]
        ]
        handler.send_json(200, {"embeddings": vectors})

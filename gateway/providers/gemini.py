"""Google's Gemini API (generateContent) behind OpenAI's chat completions and embeddings.

Requests, whole answers, embeddings and errors live here; the stream translator is in
gemini_stream.py. The mapping follows protocol.md §6. Gemini 3's thought signatures must go back
with their function calls, and plain OpenAI messages cannot carry them: they ride in the tool-call
id, after SIGNATURE, which every client echoes unchanged.
"""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from gateway.errors import InvalidRequestError, UpstreamError, UpstreamProtocolError
from gateway.providers import chunks
from gateway.providers.base import (
    CHAT,
    EMBEDDINGS,
    Adapter,
    Completion,
    StreamTranslator,
    UpstreamRequest,
    Usage,
    reasoning_effort,
    token_count,
    unsupported,
)
from gateway.providers.messages import arguments_of, text_of

SIGNATURE = "#ts:"
FILTERED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
}
CREDENTIAL_REASONS = {"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"}
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
# reasoning_effort as thinkingBudget tokens, as Google's OpenAI-compatible endpoint maps it.
THINKING_BUDGET = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


def finish_reason(reason: Any, has_calls: bool) -> str:
    """Map a Gemini finishReason (protocol.md §6.3)."""
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if has_calls else "stop"


def usage_from(raw: Any) -> Usage | None:
    """Read usageMetadata: thoughts are completion tokens, cached content is part of the prompt."""
    if not isinstance(raw, dict):
        return None

    thoughts = token_count(raw, "thoughtsTokenCount")
    return Usage(
        prompt_tokens=token_count(raw, "promptTokenCount") + token_count(raw, "toolUsePromptTokenCount"),
        completion_tokens=token_count(raw, "candidatesTokenCount") + thoughts,
        cached_tokens=token_count(raw, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def call_id(base: str, signature: Any) -> str:
    """Return the OpenAI tool-call id, carrying the thought signature when there is one."""
    return base + SIGNATURE + signature if isinstance(signature, str) and signature else base


def parts_to_message(parts: Any, new_id: Any) -> tuple[str, str, list[dict[str, Any]]]:
    """Return the text, the reasoning and the tool calls of a candidate's parts."""
    texts, thoughts, calls = [], [], []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, dict):
            base = str(call.get("id") or "call_" + new_id())
            arguments = chunks.dumps(call.get("args") or {}).decode()
            calls.append(
                chunks.tool_call(call_id(base, part.get("thoughtSignature")), call.get("name", ""), arguments)
            )
    return "".join(texts), "".join(thoughts), calls


def _part_of(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"text": part.get("text") or ""}
    if kind != "image_url":
        raise InvalidRequestError(f"{where}: parts of type {kind!r} cannot be sent to Gemini.", param=where)
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(f"{where}.image_url.url must be a URL.", param=f"{where}.image_url")
    if url.startswith("data:"):
        head, _, data = url[5:].partition(",")
        mime, _, encoding = head.partition(";")
        if encoding != "base64" or not mime:
            raise InvalidRequestError(f"{where}: data URLs must be base64.", param=f"{where}.image_url")
        return {"inlineData": {"mimeType": mime, "data": data}}
    return {"fileData": {"mimeType": mimetypes.guess_type(url)[0] or "image/jpeg", "fileUri": url}}


def _response_of(content: str) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):
        value = None
    # functionResponse.response must be an object: wrap anything else.
    return value if isinstance(value, dict) else {"content": content}


def _contents(messages: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool-call id -> function name, for the tool messages that follow
    for i, message in enumerate(messages):
        where, role, content = f"messages[{i}]", message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.append(text_of(content, f"{where}.content"))
            continue
        if role == "user":
            items = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
            turn = {
                "role": "user",
                "parts": [_part_of(p, f"{where}.content[{j}]") for j, p in enumerate(items)],
            }
        elif role == "assistant":
            parts: list[dict[str, Any]] = []
            text = text_of(content, f"{where}.content")
            if text:
                parts.append({"text": text})
            for j, call in enumerate(message.get("tool_calls") or ()):
                ident, name, arguments = arguments_of(call, f"{where}.tool_calls[{j}]")
                names[ident] = name
                part: dict[str, Any] = {"functionCall": {"name": name, "args": arguments}}
                if SIGNATURE in ident:
                    part["thoughtSignature"] = ident.split(SIGNATURE, 1)[1]
                parts.append(part)
            turn = {"role": "model", "parts": parts}
        elif role == "tool":
            ident = str(message.get("tool_call_id") or "")
            if ident not in names:
                raise InvalidRequestError(
                    f"{where}.tool_call_id does not match a tool call of an earlier assistant message; "
                    "Gemini needs the function's name, which only that message carries.",
                    param=f"{where}.tool_call_id",
                )
            response = {"name": names[ident], "response": _response_of(text_of(content, f"{where}.content"))}
            turn = {"role": "user", "parts": [{"functionResponse": response}]}
        else:
            raise InvalidRequestError(f"{where}.role {role!r} cannot be sent to Gemini.", param=where)
        # Answers to parallel calls go as parts of one user turn; same-role turns merge likewise.
        if contents and contents[-1]["role"] == turn["role"]:
            contents[-1]["parts"] += turn["parts"]
        else:
            contents.append(turn)
    return system, contents


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = {key: body[name] for name, key in _SAMPLING.items() if body.get(name) is not None}
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    if cap:
        config["maxOutputTokens"] = cap
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            config["responseJsonSchema"] = schema
    effort = reasoning_effort(body)
    if effort is not None:
        # Google's own OpenAI-compatible mapping; thoughts come back as reasoning_content.
        budget = THINKING_BUDGET[effort]
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": budget > 0}
    return config


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    declarations = []
    for i, tool in enumerate(body.get("tools") or ()):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            raise InvalidRequestError(f"tools[{i}] must be a function tool with a name.", param=f"tools[{i}]")
        spec = {"name": function["name"], "description": function.get("description") or ""}
        if function.get("parameters"):
            spec["parametersJsonSchema"] = function["parameters"]
        declarations.append(spec)
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
    choice = body.get("tool_choice")
    if declarations and choice is not None:
        if isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
            config = {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}
        elif choice in _MODES:
            config = {"mode": _MODES[choice]}
        else:
            raise InvalidRequestError("'tool_choice' is not one Gemini understands.", param="tool_choice")
        out["toolConfig"] = {"functionCallingConfig": config}
    return out


class GeminiAdapter(Adapter):
    """Translates chat completions to generateContent, embeddings to batchEmbedContents."""

    operations = frozenset({CHAT, EMBEDDINGS})

    def build_request(
        self, body: dict[str, Any], upstream_model: str, stream: bool, operation: str = CHAT
    ) -> UpstreamRequest:
        base = f"{self.provider.base_url}/models/{upstream_model}"
        if operation == EMBEDDINGS:
            return self.request(
                base + ":batchEmbedContents",
                self._embeddings(body, upstream_model),
                False,
                self.auth_headers(),
            )
        system, contents = _contents(body["messages"])
        out: dict[str, Any] = {"contents": contents}
        if any(system):
            out["systemInstruction"] = {"parts": [{"text": "\n\n".join(s for s in system if s)}]}
        out.update(_tools(body))
        config = _generation_config(body)
        if config:
            out["generationConfig"] = config
        url = base + (":streamGenerateContent?alt=sse" if stream else ":generateContent")
        return self.request(url, chunks.dumps(out), stream, self.auth_headers())

    def _embeddings(self, body: dict[str, Any], upstream_model: str) -> bytes:
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise unsupported(self.provider.name, "token-id input to embeddings; send strings", "input")
        requests = []
        for text in texts:
            item: dict[str, Any] = {
                "model": f"models/{upstream_model}",
                "content": {"parts": [{"text": text}]},
            }
            if body.get("dimensions"):
                item["outputDimensionality"] = body["dimensions"]
            requests.append(item)
        return chunks.dumps({"requests": requests})

    def parse_response(self, raw: bytes, public_model: str, operation: str = CHAT) -> Completion:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            data = None
        if not isinstance(data, dict):
            raise UpstreamProtocolError(
                f"Provider '{self.provider.name}' sent a response that is not a JSON object."
            )
        if data.get("error"):
            raise self.error_from(data, 502)
        if operation == EMBEDDINGS:
            return self._parse_embeddings(data, public_model)
        choices = []
        for n, candidate in enumerate(data.get("candidates") or ()):
            content = candidate.get("content") if isinstance(candidate.get("content"), dict) else {}
            text, reasoning, calls = parts_to_message(content.get("parts"), self.new_id)
            choices.append(
                {
                    "index": candidate.get("index", n),
                    "message": chunks.message(text, calls, reasoning),
                    "logprobs": None,
                    "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)),
                }
            )
        if not choices:  # the prompt itself was blocked (promptFeedback.blockReason)
            message = chunks.message("", [])
            choices = [{"index": 0, "message": message, "logprobs": None, "finish_reason": "content_filter"}]
        usage = usage_from(data.get("usageMetadata"))
        ident = str(data.get("responseId") or self.new_id())
        body = chunks.completion_body("chatcmpl-" + ident, int(self.clock()), public_model, choices, usage)
        return Completion(body=body, usage=usage)

    def _parse_embeddings(self, data: dict[str, Any], public_model: str) -> Completion:
        items = data.get("embeddings")
        if not isinstance(items, list) or not items:
            raise UpstreamProtocolError(f"Provider '{self.provider.name}' sent no embeddings.")
        vectors = [
            {"object": "embedding", "index": i, "embedding": e.get("values") or []}
            for i, e in enumerate(items)
        ]
        # batchEmbedContents reports no token counts: the relay estimates them from the request.
        body = {"object": "list", "model": public_model, "data": vectors, "usage": None}
        return Completion(body=chunks.dumps(body), usage=None)

    def parse_error(self, status: int, raw: bytes, headers: dict[str, str]) -> UpstreamError:
        try:
            data = json.loads(raw or b"null")
        except (ValueError, RecursionError):
            data = None
        error = self.error_from(data, status)
        if status in (429, 503) and "retry-after" in headers:
            error.headers["retry-after"] = headers["retry-after"]
        return error

    def error_from(self, data: Any, status: int) -> UpstreamError:
        """Normalise Google's {"error":{code,message,status,details}}; a bad key is a 400 there."""
        if isinstance(data, list) and data:
            data = data[0]
        error = data.get("error") if isinstance(data, dict) else None
        error = error if isinstance(error, dict) else {}
        reasons = {d.get("reason") for d in error.get("details") or () if isinstance(d, dict)}
        name = error.get("status") if isinstance(error.get("status"), str) else None
        if status == 502 and isinstance(error.get("code"), int) and 400 <= error["code"] <= 599:
            status = error["code"]  # an error inside a 200 stream: its own code says what it was
        credential = bool(reasons & CREDENTIAL_REASONS) or name in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        code = name.lower() if name and 400 <= status < 500 and status != 429 else None
        message = error.get("message") if isinstance(error.get("message"), str) else None
        return self.upstream_error(status, message, None, code, None, credential=credential)

    def translator(self, public_model: str, upstream_model: str, client_usage: bool) -> StreamTranslator:
        from gateway.providers.gemini_stream import GeminiStreamTranslator

        return GeminiStreamTranslator(self, public_model, client_usage)

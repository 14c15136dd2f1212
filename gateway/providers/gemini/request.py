"""OpenAI chat completion and embedding requests as Gemini generateContent and batchEmbedContents bodies."""

from __future__ import annotations

import json
import mimetypes
from typing import Any

from gateway.config.providers import ProviderConfig
from gateway.errors import InvalidRequestError
from gateway.providers.base import reasoning_effort, unsupported
from gateway.providers.gemini.mapping import SIGNATURE
from gateway.providers.messages import arguments_of, text_of

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


def content_body(body: dict[str, Any], max_output: int | None = None) -> dict[str, Any]:
    """Return the generateContent request for a chat completion request; max_output is the held cap."""
    system, contents = _contents(body["messages"])
    out: dict[str, Any] = {"contents": contents}
    if any(system):
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(s for s in system if s)}]}
    out.update(_tools(body))
    config = _generation_config(body)
    if max_output is not None:
        config["maxOutputTokens"] = max_output
    if config:
        out["generationConfig"] = config
    return out


def embeddings_body(body: dict[str, Any], provider: ProviderConfig, upstream_model: str) -> dict[str, Any]:
    """Return the batchEmbedContents request for an embeddings request (strings only)."""
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise unsupported(provider.name, "token-id input to embeddings; send strings", "input")
    requests = []
    for text in texts:
        item: dict[str, Any] = {"model": f"models/{upstream_model}", "content": {"parts": [{"text": text}]}}
        if body.get("dimensions"):
            item["outputDimensionality"] = body["dimensions"]
        requests.append(item)
    return {"requests": requests}

"""Anthropic system prompts and message content blocks as canonical chat messages.

Per block: text, images (base64 or URL) and PDFs (base64, as an OpenAI file part) are carried;
tool_use becomes tool_calls and tool_result a tool message; thinking text becomes reasoning_content
with its signature dropped (only Anthropic can check one), redacted_thinking is dropped (only
Anthropic can read it). cache_control and citations settings on a block are dropped. Everything
else (file ids, PDF URLs, search results, server tool blocks) is refused with a 400.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import InvalidRequestError

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
# Text blocks that become one string are joined as paragraphs, so no two run together.
JOIN = "\n\n"


def refuse(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(f"{param}: {message}", param=param)


def field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    """Return a required field of the given JSON type, or raise a 400 naming it."""
    value = data.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise refuse(f"is required and must be {_kind_name(kind)}.", f"{where}.{name}" if where else name)
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if kind == (int, float):
        return "a number"
    names = {str: "a string", list: "an array", dict: "an object", int: "an integer", bool: "a boolean"}
    return names.get(kind, "a value") if isinstance(kind, type) else "a value"


def blocks_of(content: Any, where: str) -> list[dict[str, Any]]:
    """Return content as a list of blocks: a string is one text block."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise refuse("must be a string or an array of content blocks.", where)
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise refuse("must be a content block object with a type.", f"{where}[{i}]")
    return content


def system_text(content: Any, where: str) -> str:
    """Return a system prompt (a string or text blocks) as one string."""
    texts = []
    for i, block in enumerate(blocks_of(content, where)):
        if block["type"] != "text":
            raise refuse("a system prompt holds only text blocks.", f"{where}[{i}]")
        texts.append(field(block, "text", str, f"{where}[{i}]"))
    return JOIN.join(texts)


def messages(raw: Any) -> list[dict[str, Any]]:
    """Return the conversation as canonical messages."""
    if not isinstance(raw, list) or not raw:
        raise refuse("is required and must be a non-empty array.", "messages")
    out: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise refuse("must be a message object.", where)
        role, content = message.get("role"), message.get("content")
        if role == "user":
            out += _user(content, f"{where}.content")
        elif role == "assistant":
            out.append(_assistant(content, f"{where}.content"))
        elif role == "system":
            out.append({"role": "system", "content": system_text(content, f"{where}.content")})
        else:
            raise refuse("must be user or assistant.", f"{where}.role")
    return out


def _user(content: Any, where: str) -> list[dict[str, Any]]:
    """Return a user turn: its tool results as tool messages first, then one user message.

    Anthropic puts tool_result blocks first in the turn; OpenAI wants tool messages straight after
    the assistant's tool calls. Images in a tool result cannot go into a tool message, so they join
    the user message that follows, labelled with the call they came from.
    """
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if content == []:
        raise refuse("a user turn must hold at least one content block.", where)
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(blocks_of(content, where)):
        if block["type"] == "tool_result":
            tool, images = _tool_result(block, f"{where}[{i}]")
            tools.append(tool)
            parts += images
        else:
            parts += _parts(block, f"{where}[{i}]")
    if not parts:
        return tools
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*tools, {"role": "user", "content": parts[0]["text"]}]
    return [*tools, {"role": "user", "content": parts}]


def _parts(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Return the canonical content parts of one user block."""
    kind = block["type"]
    if kind == "text":
        return [{"type": "text", "text": field(block, "text", str, where)}]
    if kind == "image":
        return [_image(field(block, "source", dict, where), f"{where}.source")]
    if kind == "document":
        return _document(block, where)
    raise refuse(f"content blocks of type '{kind}' cannot be sent to this model.", f"{where}.type")


def _image(source: dict[str, Any], where: str) -> dict[str, Any]:
    kind = source.get("type")
    if kind == "base64":
        media_type = field(source, "media_type", str, where)
        if media_type not in IMAGE_TYPES:
            raise refuse(f"images must be one of {', '.join(IMAGE_TYPES)}.", f"{where}.media_type")
        url = f"data:{media_type};base64,{field(source, 'data', str, where)}"
    elif kind == "url":
        url = field(source, "url", str, where)
    else:
        raise refuse("only base64 and url image sources can be sent to this model.", f"{where}.type")
    return {"type": "image_url", "image_url": {"url": url}}


def _document(block: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """Return a document as parts: a base64 PDF as a file, plain text or content blocks inline."""
    source = field(block, "source", dict, where)
    kind, title = source.get("type"), block.get("title")
    if kind == "base64" and source.get("media_type") == "application/pdf":
        data = field(source, "data", str, f"{where}.source")
        name = title if isinstance(title, str) and title else "document.pdf"
        return [
            {"type": "file", "file": {"filename": name, "file_data": f"data:application/pdf;base64,{data}"}}
        ]
    if kind == "text":
        text = field(source, "data", str, f"{where}.source")
        heading = f"{title}{JOIN}" if isinstance(title, str) and title else ""
        return [{"type": "text", "text": heading + text}]
    if kind == "content":
        inner = blocks_of(source.get("content"), f"{where}.source.content")
        return [p for i, b in enumerate(inner) for p in _parts(b, f"{where}.source.content[{i}]")]
    # A URL would need the gateway to fetch it, and a file id lives in Anthropic's Files API.
    raise refuse("only base64 PDF, text and content documents can be sent to this model.", f"{where}.source")


def _tool_result(block: dict[str, Any], where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the tool message for one tool_result, and the image parts that must follow it."""
    call_id = field(block, "tool_use_id", str, where)
    content = block.get("content", "")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for i, inner in enumerate(blocks_of(content, f"{where}.content")):
        part = _parts(inner, f"{where}.content[{i}]")
        texts += [p["text"] for p in part if p["type"] == "text"]
        images += [p for p in part if p["type"] != "text"]
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = "Error: " + text  # a tool message has no error flag; the model must still know
    if images:
        images.insert(0, {"type": "text", "text": f"Attachments returned by tool call {call_id}:"})
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _assistant(content: Any, where: str) -> dict[str, Any]:
    """Return an assistant turn: text, tool calls and the reasoning text of its thinking blocks."""
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts, reasoning, calls = [], [], []
    for i, block in enumerate(blocks_of(content, where)):
        kind, at = block["type"], f"{where}[{i}]"
        if kind == "text":
            texts.append(field(block, "text", str, at))
        elif kind == "tool_use":
            calls.append(_tool_call(block, at))
        elif kind == "thinking":
            reasoning.append(field(block, "thinking", str, at))
        elif kind != "redacted_thinking":
            raise refuse(f"assistant blocks of type '{kind}' cannot be sent to this model.", f"{at}.type")
    message: dict[str, Any] = {
        "role": "assistant",
        "content": JOIN.join(texts) if texts or not calls else None,
    }
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = JOIN.join(reasoning)
    return message


def _tool_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    arguments = json.dumps(field(block, "input", dict, where), ensure_ascii=False, separators=(",", ":"))
    return {
        "id": field(block, "id", str, where),
        "type": "function",
        "function": {"name": field(block, "name", str, where), "arguments": arguments},
    }

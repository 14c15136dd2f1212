"""Responses input items as canonical chat messages.

The items: message (roles system, developer, user, assistant), function_call (consecutive calls
and the assistant text before them make one assistant message), function_call_output (a tool
message; images and files in it follow as a user message, which chat tool messages cannot carry),
reasoning (its text becomes reasoning_content of the next assistant turn; encrypted_content is
OpenAI's own ciphertext and is dropped), item_reference (resolved from history and earlier input).
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequestError

ROLES = ("system", "developer", "user", "assistant")


def normalise_input(raw: Any) -> list[dict[str, Any]]:
    """Return the request's input as a list of items; a string is one user message."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
    if not isinstance(raw, list):
        raise InvalidRequestError("'input' must be a string or an array of items.", param="input")
    items = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidRequestError(f"input[{i}] must be an object.", param=f"input[{i}]")
        if "type" not in item and "role" in item:
            item = {"type": "message", **item}  # the SDK's EasyInputMessage has no type
        items.append(item)
    return items


def messages_of(items: list[tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    """Return the chat messages for (item, where) pairs, where being the item's path for errors."""
    return _Conversation(items).messages()


class _Conversation:
    """One pass over the items, carrying what an item leaves for the next one."""

    def __init__(self, items: list[tuple[dict[str, Any], str]]) -> None:
        self.items = items
        # A reference carries its target's id, so references themselves are never targets.
        self.by_id = {
            item["id"]: item
            for item, _ in items
            if isinstance(item.get("id"), str) and item.get("type") != "item_reference"
        }
        self.out: list[dict[str, Any]] = []
        self.reasoning: list[str] = []  # reasoning text waiting for its assistant turn
        self.media: list[dict[str, Any]] = []  # images and files from tool outputs, for a user message

    def messages(self) -> list[dict[str, Any]]:
        for item, where in self.items:
            self.add(self.resolve(item, where), where)
        self.flush_media()
        return self.out

    def resolve(self, item: dict[str, Any], where: str) -> dict[str, Any]:
        if item.get("type") != "item_reference":
            return item
        ref = item.get("id")
        target = self.by_id.get(ref) if isinstance(ref, str) else None
        if target is None:
            raise InvalidRequestError(
                f"{where} refers to item '{ref}', which is not in this conversation.", param=f"{where}.id"
            )
        return target

    def add(self, item: dict[str, Any], where: str) -> None:
        kind = item.get("type")
        if kind != "function_call_output":
            self.flush_media()
        if kind == "message":
            self.message(item, where)
        elif kind == "function_call":
            self.function_call(item, where)
        elif kind == "function_call_output":
            self.tool_output(item, where)
        elif kind == "reasoning":
            self.reasoning += _reasoning_text(item, where)
        else:
            raise InvalidRequestError(
                f"{where} is an item of type '{kind}', which cannot be sent to this model.",
                param=f"{where}.type",
            )

    def message(self, item: dict[str, Any], where: str) -> None:
        role = item.get("role")
        if role not in ROLES:
            raise InvalidRequestError(
                f"{where}.role must be one of {', '.join(ROLES)}.", param=f"{where}.role"
            )
        if role == "assistant":
            self.out.append(self.assistant(_assistant_content(item.get("content"), where)))
            return
        self.reasoning = []  # reasoning belongs to the assistant turn right after it
        self.out.append({"role": role, "content": _content(item.get("content"), role, f"{where}.content")})

    def function_call(self, item: dict[str, Any], where: str) -> None:
        call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
        for field, value in (("call_id", call_id), ("name", name), ("arguments", arguments)):
            if not isinstance(value, str):
                raise InvalidRequestError(f"{where}.{field} must be a string.", param=f"{where}.{field}")
        call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        last = self.out[-1] if self.out else None
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
            if self.reasoning:
                last["reasoning_content"] = "\n\n".join(
                    filter(None, (last.get("reasoning_content"), *self.reasoning))
                )
                self.reasoning = []
            return
        self.out.append(self.assistant({"content": None, "tool_calls": [call]}))

    def assistant(self, fields: dict[str, Any]) -> dict[str, Any]:
        message = {"role": "assistant", **fields}
        if self.reasoning:
            message["reasoning_content"] = "\n\n".join(self.reasoning)
            self.reasoning = []
        return message

    def tool_output(self, item: dict[str, Any], where: str) -> None:
        call_id, output = item.get("call_id"), item.get("output")
        if not isinstance(call_id, str):
            raise InvalidRequestError(f"{where}.call_id must be a string.", param=f"{where}.call_id")
        self.reasoning = []
        if isinstance(output, str):
            self.out.append({"role": "tool", "tool_call_id": call_id, "content": output})
            return
        if not isinstance(output, list):
            raise InvalidRequestError(
                f"{where}.output must be a string or an array of parts.", param=f"{where}.output"
            )
        texts = []
        for part in _content(output, "user", f"{where}.output"):
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                self.media.append(part)
        self.out.append({"role": "tool", "tool_call_id": call_id, "content": "".join(texts)})

    def flush_media(self) -> None:
        # Chat tool messages take text only, and must follow their tool calls unbroken.
        if self.media:
            self.out.append({"role": "user", "content": self.media})
            self.media = []


def _content(raw: Any, role: str, where: str) -> Any:
    """Return chat content for a system, developer or user message (or a tool output's parts)."""
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise InvalidRequestError(f"{where} must be a string or an array.", param=where)
    parts = []
    for i, part in enumerate(raw):
        at = f"{where}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": _part_string(part, "text", at)})
        elif kind in ("input_image", "input_file") and role == "user":
            parts.append(_image(part, at) if kind == "input_image" else _file(part, at))
        else:
            raise InvalidRequestError(
                f"{at} has type '{kind}', which a {role} message cannot carry here.", param=f"{at}.type"
            )
    return parts


def _assistant_content(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, str):
        return {"content": raw}
    if not isinstance(raw, list):
        raise InvalidRequestError(f"{where}.content must be a string or an array.", param=f"{where}.content")
    texts, refusals = [], []
    for i, part in enumerate(raw):
        at = f"{where}.content[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("output_text", "input_text", "text"):
            texts.append(_part_string(part, "text", at))
        elif kind == "refusal":
            refusals.append(_part_string(part, "refusal", at))
        else:
            raise InvalidRequestError(
                f"{at} has type '{kind}', which an assistant message cannot carry.", param=f"{at}.type"
            )
    fields: dict[str, Any] = {"content": "".join(texts) if texts or not refusals else None}
    if refusals:
        fields["refusal"] = "".join(refusals)
    return fields


def _image(part: dict[str, Any], at: str) -> dict[str, Any]:
    if part.get("file_id") is not None:
        raise InvalidRequestError(
            f"{at}.file_id: file ids cannot be used here; send image_url.", param=f"{at}.file_id"
        )
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(f"{at}.image_url must be a URL or a data URL.", param=f"{at}.image_url")
    image: dict[str, Any] = {"url": url}
    detail = part.get("detail")
    if detail is not None:
        if detail not in ("low", "high", "auto", "original"):
            raise InvalidRequestError(f"{at}.detail must be low, high or auto.", param=f"{at}.detail")
        image["detail"] = "high" if detail == "original" else detail  # chat's finest level
    return {"type": "image_url", "image_url": image}


def _file(part: dict[str, Any], at: str) -> dict[str, Any]:
    for name in ("file_id", "file_url"):
        if part.get(name) is not None:
            raise InvalidRequestError(
                f"{at}.{name} cannot be used here; send file_data.", param=f"{at}.{name}"
            )
    file = {"file_data": _part_string(part, "file_data", at)}
    if part.get("filename") is not None:
        file["filename"] = _part_string(part, "filename", at)
    return {"type": "file", "file": file}


def _part_string(part: dict[str, Any], name: str, at: str) -> str:
    value = part.get(name)
    if not isinstance(value, str):
        raise InvalidRequestError(f"{at}.{name} must be a string.", param=f"{at}.{name}")
    return value


def _reasoning_text(item: dict[str, Any], where: str) -> list[str]:
    """Return a reasoning item's readable text: its raw content when present, else its summary."""
    texts = []
    for field, kind in (("content", "reasoning_text"), ("summary", "summary_text")):
        parts = item.get(field)
        if parts is None:
            continue
        if not isinstance(parts, list):
            raise InvalidRequestError(f"{where}.{field} must be an array.", param=f"{where}.{field}")
        for i, part in enumerate(parts):
            if not isinstance(part, dict) or part.get("type") != kind:
                raise InvalidRequestError(
                    f"{where}.{field}[{i}] must be a {kind} part.", param=f"{where}.{field}[{i}]"
                )
            texts.append(_part_string(part, "text", f"{where}.{field}[{i}]"))
        if texts:
            return texts
    return texts

"""Reading the OpenAI request messages that translators to other wire formats need as plain values."""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import InvalidRequestError


def text_of(content: Any, where: str) -> str:
    """Return the text of a string or an array of text parts."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise InvalidRequestError(f"{where}[{i}] must be a text part here.", param=f"{where}[{i}]")
            texts.append(part.get("text") or part.get("refusal") or "")
        return "".join(texts)
    raise InvalidRequestError(f"{where} must be a string or an array of parts.", param=where)


def arguments_of(call: Any, where: str) -> tuple[str, str, dict[str, Any]]:
    """Return id, name and the parsed arguments object of an OpenAI tool call."""
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(f"{where} must be a function tool call with a name.", param=where)
    try:
        arguments = json.loads(function.get("arguments") or "{}")
    except (ValueError, RecursionError):
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequestError(
            f"{where}.function.arguments must be a JSON object.", param=f"{where}.function.arguments"
        )
    return str(call.get("id") or ""), function["name"], arguments

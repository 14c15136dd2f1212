"""Canonical chat answers as Responses `response` objects, and the items the response store keeps.

A response echoes the request the way openai-python's `Response` model and Codex expect: the
model the client asked for, the function tools the model could call, tool_choice, text, reasoning
and the other settings. Item ids derive from the response id and the output index, so a streamed
answer and a whole one name their items alike, and ids never repeat across responses.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import UpstreamProtocolError
from gateway.providers.base import Usage, token_count
from gateway.surfaces.responses.items import normalise_input

# finish_reason -> incomplete_details.reason; every other finish completes the response.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
PREFIXES = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}


def from_canonical(
    completion: dict[str, Any], request: dict[str, Any], response_id: str, created_at: int
) -> dict[str, Any]:
    """Return the Responses object for a whole chat.completion."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise UpstreamProtocolError("The upstream answer has no message to turn into a response.")
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    output: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        output.append(reasoning_item(item_id(response_id, "reasoning", len(output)), reasoning))
    parts = []
    if isinstance(message.get("content"), str) and message["content"]:
        parts.append(text_part(message["content"]))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append(refusal_part(message["refusal"]))
    calls = [call for call in message.get("tool_calls") or () if isinstance(call, dict)]
    if parts or not (output or calls):
        output.append(message_item(item_id(response_id, "message", len(output)), parts or [text_part("")]))
    for call in calls:
        function = as_object(call.get("function"))
        index = len(output)
        call_id = call.get("id") or item_id(response_id, "call", index)
        name, arguments = str(function.get("name") or ""), str(function.get("arguments") or "")
        output.append(
            function_call_item(item_id(response_id, "function_call", index), call_id, name, arguments)
        )
    reason = INCOMPLETE.get(str(finish))
    if reason is not None:
        output[-1] = dict(output[-1], status="incomplete")  # the item the cut went through
    usage = usage_from_chat(completion.get("usage"))
    return envelope(request, response_id, created_at, output, usage, reason)


def envelope(
    request: dict[str, Any],
    response_id: str,
    created_at: int,
    output: list[dict[str, Any]],
    usage: Usage | None,
    incomplete: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """Return a response object echoing the request; status follows incomplete unless given."""
    reasoning, text = as_object(request.get("reasoning")), as_object(request.get("text"))
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status or ("incomplete" if incomplete else "completed"),
        "background": False,
        "error": None,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": request.get("model"),
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": request.get("previous_response_id"),
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": request.get("safety_identifier"),
        "store": request.get("store") is not False,
        "temperature": request.get("temperature"),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity")},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": function_tools(request.get("tools")),
        "top_p": request.get("top_p"),
        "truncation": request.get("truncation") or "disabled",
        "usage": usage_object(usage),
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def function_tools(raw: Any) -> list[dict[str, Any]]:
    """Return the request's function tools as the response echoes them: the ones the model had."""
    tools = []
    for tool in raw if isinstance(raw, list) else ():
        if isinstance(tool, dict) and tool.get("type") == "function":
            tools.append(
                {
                    "type": "function",
                    "name": tool.get("name"),
                    "description": tool.get("description"),
                    "parameters": tool.get("parameters"),
                    "strict": tool.get("strict"),
                }
            )
    return tools


def item_id(response_id: str, kind: str, index: int | str) -> str:
    """Return the id of output item `index`: its type's prefix, the response id's tail, the index."""
    tail = response_id.removeprefix("resp_")
    return f"{PREFIXES.get(kind, kind)}_{tail}_{index}"


def text_part(text: str) -> dict[str, Any]:
    """Return an output_text part; there are no annotations, and logprobs are never asked for."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(text: str) -> dict[str, Any]:
    """Return a refusal part, for the canonical message's refusal."""
    return {"type": "refusal", "refusal": text}


def message_item(item_id: str, parts: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    """Return an assistant message item."""
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": parts}


def reasoning_item(item_id: str, text: str | None) -> dict[str, Any]:
    """Return a reasoning item: the upstream's reasoning as one summary part (none while it starts)."""
    summary = [] if text is None else [{"type": "summary_text", "text": text}]
    return {"id": item_id, "type": "reasoning", "summary": summary}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    """Return a function_call item; call_id is the canonical tool-call id the client answers to."""
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def usage_from_chat(raw: Any) -> Usage | None:
    """Read a canonical usage object, with its cached and reasoning token details."""
    if not isinstance(raw, dict) or ("prompt_tokens" not in raw and "completion_tokens" not in raw):
        return None
    prompt, completion = (
        as_object(raw.get("prompt_tokens_details")),
        as_object(raw.get("completion_tokens_details")),
    )
    return Usage(
        prompt_tokens=token_count(raw, "prompt_tokens"),
        completion_tokens=token_count(raw, "completion_tokens"),
        cached_tokens=token_count(prompt, "cached_tokens"),
        reasoning_tokens=token_count(completion, "reasoning_tokens"),
        cache_write_tokens=token_count(prompt, "cache_write_tokens"),
    )


def usage_object(usage: Usage | None) -> dict[str, Any] | None:
    """Return the Responses usage object; both detail objects are always there, as Codex requires."""
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def as_object(value: Any) -> dict[str, Any]:
    """Return value if it is a JSON object, else an empty one, for reading optional sub-objects."""
    return value if isinstance(value, dict) else {}


def output_items(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the output items the store keeps for a later previous_response_id."""
    output = response.get("output")
    return [item for item in output if isinstance(item, dict)] if isinstance(output, list) else []


def input_items(body: dict[str, Any], response_id: str) -> list[dict[str, Any]]:
    """Return the request's input as items with ids and part-list content, as the store keeps them.

    Items keep the ids the client gave them; the others get ids like the output's, with an "in"
    index, so an item_reference in a later request can find any of them.
    """
    items = []
    for index, item in enumerate(normalise_input(body.get("input"))):
        item = dict(item)
        kind = str(item.get("type"))
        if kind == "message" and isinstance(item.get("content"), str):
            part = "output_text" if item.get("role") == "assistant" else "input_text"
            item["content"] = [{"type": part, "text": item["content"]}]
        if not isinstance(item.get("id"), str) and kind != "item_reference":
            item["id"] = item_id(response_id, kind, f"in{index}")
        items.append(item)
    return items

"""A whole canonical chat.completion as an Anthropic Messages `message` object.

Blocks come in Anthropic's order: thinking, text, tool_use. Signed thinking (thinking_blocks, from
an anthropic upstream) is kept as signed; any other reasoning becomes a thinking block whose
signature carries the gateway-unsigned prefix (mapping.unsigned_signature).
"""

from __future__ import annotations

from typing import Any

from gateway.errors import UpstreamProtocolError
from gateway.surfaces.anthropic_messages import mapping


def from_canonical(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """Return the Anthropic message for a canonical completion; model is the one the client asked for."""
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise UpstreamProtocolError("The upstream sent an answer without a choice.")
    choice = choices[0]
    message = mapping.dict_of(choice.get("message"))
    msg_id = mapping.message_id(completion.get("id"))
    text, refused = _text(message)
    content = _thinking(message, msg_id)
    if text:
        content.append({"type": "text", "text": text})
    calls = [_tool_use(call, msg_id, i) for i, call in enumerate(mapping.list_of(message.get("tool_calls")))]
    content += calls
    stop_sequence = mapping.matched_stop(choice)
    reason = (
        "refusal" if refused else mapping.stop_reason(choice.get("finish_reason"), stop_sequence, bool(calls))
    )
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": stop_sequence if reason == "stop_sequence" else None,
        "usage": mapping.anthropic_usage(mapping.usage_from(completion.get("usage"))),
    }


def _text(message: dict[str, Any]) -> tuple[str, bool]:
    """Return the message's text, and whether it is OpenAI's refusal rather than an answer."""
    content = message.get("content")
    if isinstance(content, list):  # some servers answer with text parts
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    refusal = message.get("refusal")
    if not content and isinstance(refusal, str) and refusal:
        return refusal, True
    return (content if isinstance(content, str) else ""), False


def _thinking(message: dict[str, Any], msg_id: str) -> list[dict[str, Any]]:
    """Return the thinking blocks: signed ones as they came, else the reasoning text, unsigned."""
    signed = [
        b
        for b in mapping.list_of(message.get("thinking_blocks"))
        if isinstance(b, dict) and b.get("type") in ("thinking", "redacted_thinking")
    ]
    if signed:
        return signed
    reasoning = message.get("reasoning_content")
    if not isinstance(reasoning, str) or not reasoning:
        return []
    return [{"type": "thinking", "thinking": reasoning, "signature": mapping.unsigned_signature(msg_id)}]


def _tool_use(call: Any, msg_id: str, index: int) -> dict[str, Any]:
    call = mapping.dict_of(call)
    function = mapping.dict_of(call.get("function"))
    call_id = call.get("id")
    name = function.get("name")
    return {
        "type": "tool_use",
        # Ids pass through unchanged: Gemini's carry a thought signature the next turn needs.
        "id": call_id if isinstance(call_id, str) and call_id else f"toolu_{msg_id}_{index}",
        "name": name if isinstance(name, str) else "",
        "input": mapping.tool_input(function.get("arguments")),
    }

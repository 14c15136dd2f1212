"""OpenAI chat completion requests as Anthropic Messages request bodies."""

from __future__ import annotations

import re
from typing import Any

from gateway.config.providers import ModelConfig, ProviderConfig
from gateway.errors import InvalidRequestError
from gateway.providers.base import reasoning_effort, unsupported
from gateway.providers.messages import arguments_of, text_of

DEFAULT_MAX_TOKENS = 4096  # when neither the client, the model nor the provider sets one


# reasoning_effort as a thinking budget in tokens (LiteLLM's mapping, so clients moving over see the
# same); none and minimal leave thinking off.
THINKING_BUDGET = {"low": 1024, "medium": 2048, "high": 4096}


MIN_THINKING_BUDGET = 1024

# claude-<family>-<major>[-<minor>], the minor being one or two digits (a date is eight).
_GENERATION = re.compile(r"claude-[a-z]+-(\d+)(?:-(\d{1,2}))?(?!\d)")


IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def _image(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(f"{where}.image_url.url must be a URL.", param=f"{where}.image_url")
    if url.startswith("data:"):
        head, _, data = url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if encoding != "base64" or media_type not in IMAGE_TYPES:
            raise InvalidRequestError(
                f"{where}: images must be base64 data URLs of {', '.join(IMAGE_TYPES)}, or https URLs.",
                param=f"{where}.image_url",
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where} must be a string or an array of parts.", param=where)
    blocks = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text") or ""})
        elif kind == "image_url":
            blocks.append(_image(part, f"{where}[{i}]"))
        else:
            raise InvalidRequestError(
                f"{where}[{i}]: parts of type {kind!r} cannot be sent to Anthropic.", param=f"{where}[{i}]"
            )
    return blocks


def _assistant_content(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    # Thinking blocks go back first and unchanged on tool-use turns; without their signature
    # Anthropic refuses them, so text-only reasoning_content is not sent back.
    for block in message.get("thinking_blocks") or ():
        if isinstance(block, dict) and block.get("type") in ("thinking", "redacted_thinking"):
            blocks.append(block)
    text = text_of(message.get("content"), f"{where}.content")
    if text:
        blocks.append({"type": "text", "text": text})
    for j, call in enumerate(message.get("tool_calls") or ()):
        call_id, name, arguments = arguments_of(call, f"{where}.tool_calls[{j}]")
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": arguments})
    return blocks


def _messages(messages: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """Split OpenAI messages into Anthropic's system text and alternating turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where, role = f"messages[{i}]", message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content"), f"{where}.content"))
            continue
        if role == "user":
            turn = {"role": "user", "content": _user_content(message.get("content"), f"{where}.content")}
        elif role == "assistant":
            turn = {"role": "assistant", "content": _assistant_content(message, where)}
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": str(message.get("tool_call_id") or ""),
                "content": text_of(message.get("content"), f"{where}.content"),
            }
            turn = {"role": "user", "content": [result]}
        else:
            raise InvalidRequestError(f"{where}.role {role!r} cannot be sent to Anthropic.", param=where)
        # Consecutive tool results (and a user message after them) must form one user turn.
        if turns and turns[-1]["role"] == turn["role"]:
            turns[-1]["content"] = _blocks(turns[-1]["content"]) + _blocks(turn["content"])
        else:
            turns.append(turn)
    return "\n\n".join(s for s in system if s), turns


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None and parallel is not False:
        return None
    if choice is None or choice == "auto":
        out: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and isinstance((choice.get("function") or {}).get("name"), str):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequestError("'tool_choice' is not one Anthropic understands.", param="tool_choice")
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools if isinstance(tools, list) else ()):
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict) or not function.get("name"):
            raise InvalidRequestError(f"tools[{i}] must be a function tool with a name.", param=f"tools[{i}]")
        spec = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        out.append(spec)
    return out


def build_body(
    body: dict[str, Any],
    provider: ProviderConfig,
    upstream_model: str,
    stream: bool,
    max_output: int | None = None,
) -> dict[str, Any]:
    """Return the Messages request for a chat completion request; max_output is the held cap."""
    system, turns = _messages(body["messages"])
    out: dict[str, Any] = {"model": upstream_model, "messages": turns}
    if system:
        out["system"] = system
    model = next((m for m in provider.models if m.upstream_id == upstream_model), None)
    out["max_tokens"] = (
        max_output
        or body.get("max_completion_tokens")
        or body.get("max_tokens")
        or (model and model.max_output_tokens)
        or provider.max_tokens
        or DEFAULT_MAX_TOKENS
    )
    if (body.get("n") or 1) != 1:
        raise unsupported(provider.name, "n > 1", "n")
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text"):
        raise unsupported(provider.name, f"response_format {fmt.get('type')!r}", "response_format")
    if isinstance(body.get("temperature"), int | float):
        out["temperature"] = min(float(body["temperature"]), 1.0)  # Anthropic's range is 0-1
    for name in ("top_p", "top_k", "thinking"):
        if body.get(name) is not None:
            out[name] = body[name]
    adaptive = _adaptive(upstream_model, model)
    if adaptive and "temperature" in out and "top_p" in out:
        del out["top_p"]  # these models refuse both together; temperature is the one clients mean
    _thinking(out, reasoning_effort(body), provider.name, adaptive)
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        out["tools"] = _tools(body["tools"])
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None and body.get("tools"):
        out["tool_choice"] = choice
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    if stream:
        out["stream"] = True
    return out


def _adaptive(upstream_model: str, model: ModelConfig | None) -> bool:
    """Whether the model thinks adaptively: its `thinking` option, else Claude 4.6 or later by name."""
    if model is not None and model.thinking is not None:
        return model.thinking == "adaptive"
    found = _GENERATION.search(upstream_model)
    if found is None:
        return False
    major, minor = int(found[1]), int(found[2] or 0)
    return (major, minor) >= (4, 6)


def _thinking(out: dict[str, Any], effort: str | None, provider: str, adaptive: bool) -> None:
    """Turn reasoning_effort into extended thinking, unless the request sets thinking itself.

    Adaptive models (Claude 4.6 and later; Opus 4.7 refuses budget_tokens) take an effort. Others
    take a budget, which counts against max_tokens and must
    be at least 1024 and below it. Thinking takes no temperature, top_k or top_p change, so those
    are dropped rather than refused.
    """
    budget = THINKING_BUDGET.get(effort or "none", 0)
    if not budget or "thinking" in out:
        return
    if adaptive:
        out["thinking"] = {"type": "adaptive"}
        out["output_config"] = {"effort": effort}  # low, medium and high are Anthropic's names too
        for name in ("temperature", "top_k", "top_p"):
            out.pop(name, None)
        return
    budget = min(budget, out["max_tokens"] - 1)
    if budget < MIN_THINKING_BUDGET:
        raise unsupported(
            provider, f"reasoning_effort with max_tokens under {MIN_THINKING_BUDGET + 1}", "max_tokens"
        )
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    for name in ("temperature", "top_k", "top_p"):
        out.pop(name, None)

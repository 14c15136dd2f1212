"""Anthropic Messages requests in the canonical form (OpenAI chat completions), for translated upstreams.

Each top-level field is mapped, dropped (DROPPED says why the answer stays the same without it) or
refused with a 400 naming it (REFUSED says what would be lost). A field in none of them is dropped
too, and named by unknown_fields() for the caller to report: Anthropic adds request fields with
each beta, and Claude Code sends them as soon as it knows them, so refusing every new one would
break each new Claude Code release on every translated upstream. A new field that turns out to
change the answer joins REFUSED. Content blocks are mapped, or refused, in content.py.
"""

from __future__ import annotations

from typing import Any

from gateway.surfaces.anthropic_messages.content import field, messages, refuse, system_text

DROPPED = {
    "cache_control": "prompt caching changes the price, not the answer; upstreams cache on their own",
    "context_management": "Anthropic's server-side clearing of old thinking and tool results; the "
    "upstream gets the whole history instead",
    "container": "a code-execution container, for server tools, which are refused",
    "diagnostics": "Anthropic's prompt-cache diagnostics",
    "inference_geo": "the region is the gateway operator's routing choice",
    "service_tier": "Anthropic's capacity tiers",
    "speed": "Anthropic's fast mode",
    "user_profile_id": "an Anthropic account concept",
    "workspace_id": "an Anthropic account concept",
}
REFUSED = {
    "mcp_servers": "tools on remote MCP servers, which Anthropic calls for the model: without them the "
    "model would answer without its tools",
}
MAPPED = (
    "model",
    "max_tokens",
    "messages",
    "system",
    "stream",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "output_config",
    "metadata",
)
# thinking.budget_tokens -> reasoning_effort: the inverse of the anthropic adapter's budgets
# (low 1024, medium 2048, high 4096), so an effort sent through both directions comes back as sent.
BUDGETS = ((4096, "high"), (2048, "medium"), (0, "low"))
MIN_BUDGET = 1024  # Anthropic's own floor for budget_tokens
# output_config.effort -> reasoning_effort; the gateway's efforts stop at high.
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
OUTPUT_CONFIG = ("effort", "format")  # output_config's mapped keys; others are dropped as unknown
THINKING_TYPES = ("enabled", "adaptive", "between_tools", "disabled")


def to_canonical(body: dict[str, Any]) -> dict[str, Any]:
    """Return the canonical chat body for an Anthropic Messages request, or raise a 400."""
    if not isinstance(body, dict):
        raise refuse("the request body must be a JSON object.", "body")
    for name in body:
        if name in REFUSED:
            raise refuse("is not supported when the model is not served by Anthropic.", name)
    max_tokens = field(body, "max_tokens", int, "")
    if max_tokens < 1:
        raise refuse("must be at least 1.", "max_tokens")
    out: dict[str, Any] = {"model": field(body, "model", str, "")}
    system = body.get("system")
    conversation = messages(body.get("messages"))
    if system is not None and (text := system_text(system, "system")):
        conversation.insert(0, {"role": "system", "content": text})
    out["messages"] = conversation
    out["max_completion_tokens"] = max_tokens
    out.update(_sampling(body))
    out.update(_tools(body.get("tools"), body.get("tool_choice")))
    effort = _effort(body.get("thinking"), body.get("output_config"))
    if effort is not None:
        out["reasoning_effort"] = effort
    response_format = _format(body.get("output_config"))
    if response_format is not None:
        out["response_format"] = response_format
    user = _user(body.get("metadata"))
    if user is not None:
        out["user"] = user
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise refuse("must be a boolean.", "stream")
    if stream:
        # Usage must reach message_delta, so it is asked for whatever the client wanted.
        out.update(stream=True, stream_options={"include_usage": True})
    return out


def unknown_fields(body: dict[str, Any]) -> list[str]:
    """Return the fields to_canonical drops without knowing them (output_config's too, dotted)."""
    names = [n for n in body if n not in MAPPED and n not in DROPPED and n not in REFUSED]
    config = body.get("output_config")
    if isinstance(config, dict):
        names += [f"output_config.{n}" for n in config if n not in OUTPUT_CONFIG]
    return names


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = field(body, name, (int, float), "")
    if body.get("top_k") is not None:
        out["top_k"] = field(body, "top_k", int, "")
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise refuse("must be an array of strings.", "stop_sequences")
        if stop:
            out["stop"] = stop
    return out


def _tools(tools: Any, choice: Any) -> dict[str, Any]:
    """Return tools, tool_choice and parallel_tool_calls for the canonical body."""
    if tools is not None and not isinstance(tools, list):
        raise refuse("must be an array.", "tools")
    out: dict[str, Any] = {}
    if tools:
        out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    if choice is None:
        return out
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise refuse("'type' must be auto, any, tool or none.", "tool_choice")
    kind = choice["type"]
    if not tools:
        if kind in ("any", "tool"):
            raise refuse("a tool must be used but no tools are given.", "tool_choice")
        return out  # OpenAI refuses a tool_choice without tools; without tools none and auto agree
    if kind == "tool":
        name = field(choice, "name", str, "tool_choice")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    disable = choice.get("disable_parallel_tool_use", False)
    if not isinstance(disable, bool):
        raise refuse("must be a boolean.", "tool_choice.disable_parallel_tool_use")
    if disable and kind != "none":
        out["parallel_tool_calls"] = False
    return out


def _tool(tool: Any, where: str) -> dict[str, Any]:
    """Return one client tool as a function; Anthropic's own tools are refused by name.

    Server tools (web_search, web_fetch, code_execution …) run on Anthropic's servers, and the
    Anthropic-defined client tools (bash, text_editor, computer, memory) have schemas only Claude is
    trained on: dropping either would change the answer without a word, so both are a 400.
    """
    if not isinstance(tool, dict):
        raise refuse("must be a tool object.", where)
    name = field(tool, "name", str, where)
    if tool.get("type") not in (None, "custom"):
        raise refuse(
            f"the tool '{name}' ({tool.get('type')}) is one Anthropic runs or defines itself; only "
            "custom tools with an input_schema can be used with this model.",
            f"{where}.type",
        )
    function: dict[str, Any] = {"name": name}
    description = tool.get("description")
    if description is not None:
        function["description"] = field(tool, "description", str, where)
    function["parameters"] = field(tool, "input_schema", dict, where)
    if tool.get("strict") is not None:
        function["strict"] = field(tool, "strict", bool, where)
    return {"type": "function", "function": function}


def _effort(thinking: Any, output_config: Any) -> str | None:
    """Return the reasoning_effort that stands for Anthropic's thinking settings, or None for none.

    enabled maps its budget (see BUDGETS); adaptive (and between_tools) maps output_config.effort,
    and without one leaves the effort to the model, as adaptive does. disabled, and effort without
    thinking, send nothing: reasoning_effort makes a model that does not reason refuse the request.
    """
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in THINKING_TYPES:
        raise refuse(f"must be one of {', '.join(THINKING_TYPES)}.", "thinking.type")
    if kind == "disabled":
        return None
    if kind == "enabled":
        budget = field(thinking, "budget_tokens", int, "thinking")
        # Only the floor is checked: with interleaved thinking (a beta Claude Code sends) the budget
        # may pass max_tokens, and a translated upstream has no budget to keep below it anyway.
        if budget < MIN_BUDGET:
            raise refuse(f"must be at least {MIN_BUDGET}.", "thinking.budget_tokens")
        return next(effort for floor, effort in BUDGETS if budget >= floor)
    effort = output_config.get("effort") if isinstance(output_config, dict) else None
    return EFFORTS.get(effort) if isinstance(effort, str) else None


def _format(output_config: Any) -> dict[str, Any] | None:
    """Return the response_format for output_config.format (structured outputs), checking effort."""
    if output_config is None:
        return None
    if not isinstance(output_config, dict):
        raise refuse("must be an object.", "output_config")
    effort = output_config.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise refuse(f"must be one of {', '.join(EFFORTS)}.", "output_config.effort")
    fmt = output_config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise refuse("'type' must be json_schema.", "output_config.format")
    schema = field(fmt, "schema", dict, "output_config.format")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


def _user(metadata: Any) -> str | None:
    """Return metadata.user_id; any other metadata has no canonical home and is dropped."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise refuse("must be an object.", "metadata")
    user = metadata.get("user_id")
    if user is not None and not isinstance(user, str):
        raise refuse("must be a string.", "metadata.user_id")
    return user or None

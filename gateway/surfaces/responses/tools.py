"""Responses tools, tool_choice and text.format as canonical chat tools and response_format.

Only `function` tools reach a chat-completions upstream. Every other type is OpenAI-hosted (run by
OpenAI's servers, or answered with an item type chat cannot express), and is either dropped or
refused:

| type                                   | here    | why                                               |
|----------------------------------------|---------|---------------------------------------------------|
| function                               | kept    | chat's nested {type: function, function: {...}}   |
| web_search, web_search_preview (+dated)| dropped | Codex sends it by default; the model just cannot  |
|                                        |         | search, and says so if asked                      |
| namespace                              | dropped | Codex sends one by default (deferred tool groups) |
| tool_search                            | dropped | a hosted lookup of deferred tools; nothing defers |
| file_search                            | refused | its vector stores are the point of the request    |
| computer, computer_use(_preview)       | refused | the client loops on computer_call items           |
| mcp                                    | refused | OpenAI would call the server; nobody would here   |
| code_interpreter, image_generation     | refused | their output items are the answer                 |
| custom, local_shell, shell, apply_patch| refused | answered with item types other than function_call |
| programmatic_tool_calling, other       | refused | unknown to this translation                       |

A dropped tool that tool_choice forces, names or requires is refused after all, with the tool's name.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequestError

DROPPED = frozenset(
    {
        "web_search",
        "web_search_2025_08_26",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "namespace",
        "tool_search",
    }
)
MODES = ("auto", "none", "required")


def translate(body: dict[str, Any], out: dict[str, Any]) -> None:
    """Set the canonical tools, tool_choice and parallel_tool_calls from the Responses ones."""
    tools, dropped = _tools(body.get("tools"))
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        tools, choice = _allowed(choice, tools, dropped)
    mode = _choice(choice, tools, dropped)
    if not tools:
        # OpenAI's chat endpoint 400s tool_choice and parallel_tool_calls without tools.
        return
    out["tools"] = tools
    if mode is not None:
        out["tool_choice"] = mode
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise InvalidRequestError("'parallel_tool_calls' must be a boolean.", param="parallel_tool_calls")
        out["parallel_tool_calls"] = parallel


def response_format(text: Any) -> dict[str, Any] | None:
    """Return chat's response_format for text.format; text.verbosity is dropped (chat has no knob)."""
    if text is None:
        return None
    if not isinstance(text, dict):
        raise InvalidRequestError("'text' must be an object.", param="text")
    verbosity = text.get("verbosity")
    if verbosity is not None and verbosity not in ("low", "medium", "high"):
        raise InvalidRequestError("'text.verbosity' must be low, medium or high.", param="text.verbosity")
    fmt = text.get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise InvalidRequestError(
            "'text.format.type' must be text, json_object or json_schema.", param="text.format"
        )
    name, schema, strict = fmt.get("name"), fmt.get("schema"), fmt.get("strict")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError("'text.format.name' must be a string.", param="text.format.name")
    if not isinstance(schema, dict):
        raise InvalidRequestError("'text.format.schema' must be an object.", param="text.format.schema")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidRequestError("'text.format.strict' must be a boolean.", param="text.format.strict")
    spec: dict[str, Any] = {"name": name, "schema": schema}
    if isinstance(fmt.get("description"), str):
        spec["description"] = fmt["description"]
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def _tools(raw: Any) -> tuple[list[dict[str, Any]], set[str]]:
    """Return the chat tools and the names and types of the tools dropped on the way."""
    if raw is None:
        return [], set()
    if not isinstance(raw, list):
        raise InvalidRequestError("'tools' must be an array.", param="tools")
    tools, dropped = [], set()
    for i, tool in enumerate(raw):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(kind, str):
            raise InvalidRequestError(f"{where} must be an object with a type.", param=f"{where}.type")
        if kind in DROPPED:
            dropped.add(kind)
            if isinstance(tool.get("name"), str):
                dropped.add(tool["name"])
        elif kind == "function":
            tools.append(_function(tool, where))
        else:
            raise InvalidRequestError(
                f"Tools of type '{kind}' are hosted by OpenAI and cannot run on this model.",
                param=f"{where}.type",
            )
    return tools, dropped


def _function(tool: dict[str, Any], where: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(f"{where}.name must be a non-empty string.", param=f"{where}.name")
    function: dict[str, Any] = {"name": name}
    description, parameters, strict = tool.get("description"), tool.get("parameters"), tool.get("strict")
    if description is not None:
        if not isinstance(description, str):
            raise InvalidRequestError(f"{where}.description must be a string.", param=f"{where}.description")
        function["description"] = description
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise InvalidRequestError(f"{where}.parameters must be an object.", param=f"{where}.parameters")
        function["parameters"] = parameters
    if strict is not None:
        if not isinstance(strict, bool):
            raise InvalidRequestError(f"{where}.strict must be a boolean.", param=f"{where}.strict")
        function["strict"] = strict
    return {"type": "function", "function": function}


def _choice(choice: Any, tools: list[dict[str, Any]], dropped: set[str]) -> Any:
    """Return chat's tool_choice; forcing a tool that does not run here is a 400."""
    if choice is None:
        return None
    if choice in MODES:
        if choice == "required" and not tools:
            raise InvalidRequestError(
                f"tool_choice 'required' needs a function tool; {_listing(dropped)} cannot run here.",
                param="tool_choice",
            )
        return choice
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise InvalidRequestError(
            "'tool_choice' must be auto, none, required or a tool object.", param="tool_choice"
        )
    if choice["type"] != "function":
        raise InvalidRequestError(
            f"tool_choice forces the '{choice['type']}' tool, which cannot run on this model.",
            param="tool_choice",
        )
    name = choice.get("name")
    if not any(tool["function"]["name"] == name for tool in tools):
        raise InvalidRequestError(
            f"tool_choice names the function '{name}', which is not among the request's function tools.",
            param="tool_choice.name",
        )
    return {"type": "function", "function": {"name": name}}


def _allowed(
    choice: dict[str, Any], tools: list[dict[str, Any]], dropped: set[str]
) -> tuple[list[dict[str, Any]], str]:
    """Apply allowed_tools by offering only those tools: the same choice, on every upstream."""
    allowed = choice.get("tools")
    mode = choice.get("mode")
    if not isinstance(allowed, list) or mode not in ("auto", "required"):
        raise InvalidRequestError(
            "'tool_choice' of type allowed_tools needs mode auto or required and a tools array.",
            param="tool_choice",
        )
    names = set()
    for i, entry in enumerate(allowed):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == "function" and isinstance(entry.get("name"), str):
            names.add(entry["name"])
        elif kind not in DROPPED:
            raise InvalidRequestError(
                f"tool_choice allows the '{kind}' tool, which cannot run on this model.",
                param=f"tool_choice.tools[{i}]",
            )
    return [tool for tool in tools if tool["function"]["name"] in names], mode


def _listing(dropped: set[str]) -> str:
    return ", ".join(sorted(dropped)) or "no tool"

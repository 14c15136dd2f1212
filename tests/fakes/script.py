"""The one conversation every fake provider plays, whatever its wire format, for the same-script tests.

A plain question is echoed back. With tools offered, the model calls get_weather(city="Paris"),
its arguments split across stream events. Given the tool's result, it answers "The tool said …".
Each fake bills prompt words + 3 a message and completion words, in its own usage format, and
records the Billed the gateway must end up charging.
"""

from __future__ import annotations

from dataclasses import dataclass

TOOL_NAME = "get_weather"
TOOL_ARGUMENTS = '{"city": "Paris"}'
ARGUMENT_PIECES = ('{"city": ', '"Paris"}')  # how streams split them
TOOL_COMPLETION_TOKENS = 7


@dataclass(frozen=True)
class Reply:
    text: str | None  # None: a tool call
    completion_tokens: int


@dataclass(frozen=True)
class Billed:
    """What the gateway must bill: OpenAI's meaning of prompt, completion and cached tokens."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


def reply(user_text: str, tool_result: str | None, has_tools: bool) -> Reply:
    """Decide the model's answer from the last turn."""
    if tool_result is not None:
        text = f"The tool said {tool_result}"
    elif has_tools:
        return Reply(None, TOOL_COMPLETION_TOKENS)
    else:
        text = user_text
    return Reply(text, len(text.split()))


def prompt_tokens(texts: list[str]) -> int:
    return sum(len(t.split()) + 3 for t in texts)

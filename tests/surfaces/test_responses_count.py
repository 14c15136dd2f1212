"""The input-token estimate for /v1/responses/input_tokens: conservative, and shaped as the SDK reads it."""

from __future__ import annotations

import pytest
from openai.types.responses import InputTokenCountResponse

from gateway.errors import InvalidRequestError
from gateway.surfaces.responses.count import estimate_input_tokens, input_tokens_object, text_tokens
from tests.surfaces import responses_golden as golden

TRANSLATABLE = [c for c in golden.cases(".request.json") if not c.startswith("refuse_")]


def test_ascii_counts_three_characters_a_token_and_the_rest_one_each():
    assert text_tokens("abcdef") == 2
    assert text_tokens("abcdefg") == 3
    assert text_tokens("日本語のテキスト") == 8
    assert text_tokens("") == 0


def test_a_short_prompt_costs_its_text_and_the_framing():
    assert estimate_input_tokens({"input": "Hello there!"}) == 3 + 4 + 4


def test_images_cost_a_fixed_amount_and_less_at_low_detail():
    def image(detail):
        part = {"type": "input_image", "image_url": "https://example.com/a.png", "detail": detail}
        return {"input": [{"role": "user", "content": [part]}]}

    assert estimate_input_tokens(image("high")) == 3 + 4 + 1600
    assert estimate_input_tokens(image("low")) == 3 + 4 + 85


def test_tools_and_history_are_counted():
    body = golden.load("tool_output_history", ".request.json")
    bare = estimate_input_tokens(dict(body, tools=None))
    assert estimate_input_tokens(body) > bare
    assert estimate_input_tokens(
        body, golden.load("tool_output_history", ".history.json")
    ) > estimate_input_tokens(body)


@pytest.mark.parametrize("case", TRANSLATABLE)
def test_every_fixture_counts_at_least_a_token_per_four_characters(case):
    body = golden.load(case, ".request.json")
    history = golden.optional(case, ".history.json")
    answer = input_tokens_object(body, history)
    assert InputTokenCountResponse.model_validate(answer).object == "response.input_tokens"
    assert answer["input_tokens"] >= sum(len(text) for text in texts([body, history])) // 4


def texts(value):
    """Yield every prompt string in a request: texts, outputs, arguments and instructions."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(inner, str) and key in ("text", "content", "output", "arguments", "instructions"):
                yield inner
            else:
                yield from texts(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from texts(inner)


def test_a_request_the_translation_refuses_is_a_400_here_too():
    with pytest.raises(InvalidRequestError):
        estimate_input_tokens(golden.load("refuse_background", ".request.json"))

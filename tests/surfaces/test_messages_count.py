"""The count_tokens estimate: conservative for every script, fixed image and PDF costs, never raising."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.surfaces.anthropic_messages.count import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    PDF_TOKENS_PER_PAGE,
    TOOLS_PROMPT,
    estimate_input_tokens,
)
from tests.support.examples import examples
from tests.surfaces import messages_golden as golden


def body(content, **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


def test_ascii_text_counts_a_token_per_four_characters():
    assert estimate_input_tokens(body("a" * 400)) == MESSAGE_OVERHEAD + 100


@pytest.mark.parametrize("text", ["日本語のテキストです" * 20, "Привет, как дела?" * 20])
def test_non_latin_text_costs_more_than_its_bytes_over_four(text):
    estimate = estimate_input_tokens(body(text))
    assert estimate > math.ceil(len(text.encode()) / 4)
    assert estimate >= len([c for c in text if ord(c) > 127])


def test_images_and_pdfs_have_fixed_costs():
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    source = {"type": "base64", "media_type": "application/pdf", "data": "A" * 200_000}
    pdf = {"type": "document", "source": source}
    assert estimate_input_tokens(body([image])) == MESSAGE_OVERHEAD * 2 + IMAGE_TOKENS
    assert estimate_input_tokens(body([pdf])) == MESSAGE_OVERHEAD * 2 + PDF_TOKENS_PER_PAGE * 3


def test_tools_count_their_schemas_and_the_tool_prompt():
    without = estimate_input_tokens(body("Hi"))
    tool = {"name": "Bash", "description": "Run a command.", "input_schema": {"type": "object"}}
    assert estimate_input_tokens(body("Hi", tools=[tool])) > without + TOOLS_PROMPT


def test_claude_code_request_is_counted_in_full():
    request = golden.load(golden.path("claude_code", ".request.json"))
    assert estimate_input_tokens(request) > TOOLS_PROMPT + 300


KEYS = st.sampled_from(["type", "text", "content", "source", "data", "messages", "system", "tools"])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=examples(300), deadline=None)
@given(JSON)
def test_any_body_gets_a_positive_estimate(data):
    assert estimate_input_tokens(data) >= 1

"""Responses requests as canonical chat bodies: golden cases, refusals, and a flood of bad input.

The golden-file convention is in golden.py; the cases are in fixtures/responses/.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidRequestError
from gateway.surfaces.responses.request import to_canonical
from tests.support.examples import examples
from tests.surfaces import responses_golden as golden


@pytest.mark.parametrize("case", golden.cases(".request.json"))
def test_request_matches_golden_file(case):
    body = golden.load(case, ".request.json")
    try:
        got = to_canonical(body, golden.optional(case, ".history.json"))
    except InvalidRequestError as exc:
        assert case.startswith("refuse_"), f"unexpected {exc!r}"
        golden.check(case, ".error.json", golden.error_json(exc))
        return
    assert not case.startswith("refuse_"), "the request should have been refused"
    golden.check(case, ".canonical.json", golden.as_json(got))


def test_codex_keeps_its_function_tools_and_drops_namespace_and_web_search():
    canonical = to_canonical(golden.load("codex", ".request.json"))
    names = [tool["function"]["name"] for tool in canonical["tools"]]
    assert names == [
        "exec_command",
        "write_stdin",
        "request_user_input",
        "view_image",
        "get_goal",
        "create_goal",
        "update_goal",
    ]
    assert canonical["tool_choice"] == "auto" and canonical["parallel_tool_calls"] is True
    assert canonical["reasoning_effort"] == "medium"
    for dropped in ("store", "include", "prompt_cache_key", "client_metadata", "text", "reasoning"):
        assert dropped not in canonical


def test_instructions_lead_and_history_follows_in_order():
    history = golden.load("tool_output_history", ".history.json")
    body = golden.load("tool_output_history", ".request.json")
    messages = to_canonical(body, history)["messages"]
    assert messages[0] == {"role": "system", "content": "Answer in one line."}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool", "user"]
    assert [m["role"] for m in to_canonical(dict(body, instructions=None), history)["messages"]][0] == "user"


def test_history_reasoning_rides_on_the_assistant_turn_that_follows_it():
    history = golden.load("tool_output_history", ".history.json")
    assistant = to_canonical(golden.load("tool_output_history", ".request.json"), history)["messages"][2]
    assert assistant["reasoning_content"] == "Need the weather tool and the radar image."
    assert [call["id"] for call in assistant["tool_calls"]] == ["call_a1", "call_c3"]


def test_tools_without_function_tools_send_no_tool_choice():
    body = {"model": "m", "input": "Hi", "tools": [{"type": "web_search"}], "tool_choice": "auto"}
    assert to_canonical(dict(body, parallel_tool_calls=True)) == {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }


@pytest.mark.parametrize(
    "body, param",
    [
        ([], None),
        ({"model": "m"}, "input"),
        ({"model": 3, "input": "Hi"}, "model"),
        ({"input": 5}, "input"),
        ({"input": [7]}, "input[0]"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": "Hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "Hi", "max_output_tokens": True}, "max_output_tokens"),
        ({"input": "Hi", "temperature": "hot"}, "temperature"),
        ({"input": "Hi", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"input": "Hi", "metadata": {"a": 1}}, "metadata"),
        ({"input": "Hi", "stream": "yes"}, "stream"),
        ({"input": "Hi", "top_logprobs": 5}, "top_logprobs"),
        ({"input": "Hi", "prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"input": "Hi", "tools": {"type": "function"}}, "tools"),
        ({"input": "Hi", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"input": "Hi", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "input[0].output"),
        ({"input": [{"type": "item_reference", "id": ["x"]}]}, "input[0].id"),
        ({"input": [{"type": "reasoning", "summary": [{"type": "x"}]}]}, "input[0].summary[0]"),
    ],
)
def test_bad_requests_are_400s_that_name_the_field(body, param):
    with pytest.raises(InvalidRequestError) as caught:
        to_canonical(body)
    assert caught.value.status == 400 and caught.value.param == param


def test_an_item_reference_never_resolves_to_another_reference():
    with pytest.raises(InvalidRequestError, match="not in this conversation"):
        to_canonical(
            {"input": [{"type": "item_reference", "id": "a"}]}, [{"type": "item_reference", "id": "a"}]
        )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["model", "input", "instructions", "tools", "tool_choice", "text", "reasoning", "max_output_tokens"]
    + ["temperature", "metadata", "user", "stream", "parallel_tool_calls", "background", "store"]
)
PARTS = st.sampled_from(["input_text", "input_image", "input_file", "output_text", "refusal", "x"])
ITEMS = st.sampled_from(["message", "function_call", "function_call_output", "reasoning", "item_reference"])
ITEM = st.fixed_dictionaries(
    {"type": ITEMS},
    optional={
        "role": st.sampled_from(["user", "assistant", "system", "developer", "tool"]),
        "content": JSON
        | st.lists(st.fixed_dictionaries({"type": PARTS}, optional={"text": JSON}), max_size=3),
        "call_id": JSON,
        "name": JSON,
        "arguments": JSON,
        "output": JSON,
        "summary": JSON,
        "id": JSON,
    },
)


@settings(max_examples=examples(300), deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=6))
def test_random_top_level_fields_are_translated_or_refused(body):
    _translated_or_refused(body)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(ITEM, max_size=5), st.lists(ITEM, max_size=3))
def test_random_items_are_translated_or_refused(items, history):
    _translated_or_refused({"model": "m", "input": items}, history)


@settings(max_examples=examples(200), deadline=None)
@given(st.sampled_from(golden.cases(".request.json")), st.data())
def test_fixtures_with_one_field_replaced_are_translated_or_refused(case, data):
    body = copy.deepcopy(golden.load(case, ".request.json"))
    target = body
    while isinstance(target, dict | list) and target and data.draw(st.booleans()):
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        key = data.draw(st.sampled_from(keys))
        if not isinstance(target[key], dict | list) or not target[key]:
            break
        target = target[key]
    if isinstance(target, dict) and target:
        target[data.draw(st.sampled_from(list(target)))] = data.draw(JSON)
    _translated_or_refused(body, golden.optional(case, ".history.json"))


def _translated_or_refused(body, history=None):
    try:
        out = to_canonical(body, history)
    except InvalidRequestError as exc:
        assert exc.status == 400 and exc.message
        return
    assert isinstance(out["messages"], list) and out["messages"]

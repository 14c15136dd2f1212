"""Messages requests to the canonical chat body: golden cases, the refusals, and a flood of bad input.

Cases are in fixtures/anthropic_messages/ (see golden.py): each <case>.request.json has either a
<case>.canonical.json or a <case>.refusal.json.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import InvalidRequestError
from gateway.surfaces.anthropic_messages.request import DROPPED, MAPPED, REFUSED, to_canonical, unknown_fields
from tests.support.examples import examples
from tests.surfaces import messages_golden as golden


@pytest.mark.parametrize("case", golden.cases(".request.json"))
def test_request_matches_golden_file(case):
    body = golden.load(golden.path(case, ".request.json"))
    refusal = golden.path(case, ".refusal.json")
    try:
        canonical = to_canonical(body)
    except InvalidRequestError as exc:
        got = {"status": exc.status, "type": exc.type, "param": exc.param, "message": exc.message}
        golden.check(refusal, golden.as_json(got))
        assert not golden.path(case, ".canonical.json").exists()
        return
    assert not refusal.exists(), "the request should have been refused"
    golden.check(golden.path(case, ".canonical.json"), golden.as_json(canonical))


def test_claude_code_request_keeps_what_changes_the_answer():
    canonical = to_canonical(golden.load(golden.path("claude_code", ".request.json")))
    assert canonical["reasoning_effort"] == "high"  # thinking adaptive + output_config.effort high
    assert canonical["max_completion_tokens"] == 32000
    assert [t["function"]["name"] for t in canonical["tools"]] == ["Bash", "Read", "Edit"]
    assert canonical["stream_options"] == {"include_usage": True}
    assert "cache_control" not in json.dumps(canonical)
    assert canonical["user"].startswith('{"device_id"')


def test_tool_call_ids_pass_through_unchanged():
    canonical = to_canonical(golden.load(golden.path("tool_results", ".request.json")))
    ids = [c["id"] for m in canonical["messages"] for c in m.get("tool_calls", ())]
    results = [m["tool_call_id"] for m in canonical["messages"] if m["role"] == "tool"]
    assert ids == results == ["toolu_01A", "call_9#ts:CiQBVKhc7g=="]


@pytest.mark.parametrize(
    "budget, effort", [(1024, "low"), (2047, "low"), (2048, "medium"), (4095, "medium"), (4096, "high")]
)
def test_thinking_budget_maps_to_the_inverse_of_the_anthropic_adapter(budget, effort):
    body = {"model": "m", "max_tokens": 10_000, "messages": [{"role": "user", "content": "Hi"}]}
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    assert to_canonical(body)["reasoning_effort"] == effort


def test_every_dropped_field_is_documented_and_not_also_mapped():
    assert all(isinstance(reason, str) and reason for reason in {**DROPPED, **REFUSED}.values())
    assert not set(DROPPED) & set(MAPPED)
    assert not set(REFUSED) & (set(DROPPED) | set(MAPPED))


def test_unknown_fields_are_named_for_the_caller_and_known_ones_are_not():
    body = golden.load(golden.path("future_fields_dropped", ".request.json"))
    assert unknown_fields(body) == ["fallback_model", "output_config.verbosity"]
    claude_code = golden.load(golden.path("claude_code", ".request.json"))
    assert unknown_fields(claude_code) == []


# A JSON value of any shape, for the fuzzing below.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
BLOCK_TYPES = ["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "x"]
BLOCK = st.fixed_dictionaries(
    {"type": st.sampled_from(BLOCK_TYPES)},
    optional={
        "text": JSON,
        "source": JSON,
        "id": JSON,
        "name": JSON,
        "input": JSON,
        "content": JSON,
        "thinking": JSON,
        "tool_use_id": JSON,
    },
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool"]), "content": st.lists(BLOCK) | JSON}
)
BODY = st.fixed_dictionaries(
    {"model": st.just("m") | JSON, "max_tokens": st.integers(-2, 5000) | JSON, "messages": st.lists(MESSAGE)},
    optional={name: JSON for name in [*MAPPED, *DROPPED] if name not in ("model", "max_tokens", "messages")},
)


@settings(max_examples=examples(400), deadline=None)
@given(BODY)
def test_any_request_is_canonical_or_a_400_never_an_exception(body):
    try:
        canonical = to_canonical(body)
    except InvalidRequestError as exc:
        assert exc.status == 400 and isinstance(exc.param, str) and exc.param
        return
    json.dumps(canonical)  # the canonical body must be plain JSON
    assert canonical["messages"] and canonical["max_completion_tokens"] >= 1


@settings(max_examples=examples(100), deadline=None)
@given(JSON)
def test_any_json_body_is_canonical_or_a_400(body):
    try:
        to_canonical(body)
    except InvalidRequestError:
        pass

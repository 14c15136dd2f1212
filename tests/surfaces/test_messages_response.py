"""Whole canonical answers as Messages objects: golden cases, each read back by the anthropic SDK."""

from __future__ import annotations

import json

import pytest

from gateway.errors import UpstreamProtocolError
from gateway.surfaces.anthropic_messages.mapping import RAW_ARGUMENTS
from gateway.surfaces.anthropic_messages.response import from_canonical
from tests.surfaces import messages_golden as golden
from tests.surfaces import messages_sdk as sdk

CASES = golden.cases(".completion.json")


def message_of(case: str) -> dict:
    return from_canonical(golden.load(golden.path(case, ".completion.json")), golden.PUBLIC_MODEL)


@pytest.mark.parametrize("case", CASES)
def test_message_matches_golden_file(case):
    golden.check(golden.path(case, ".message.json"), golden.as_json(message_of(case)))


@pytest.mark.parametrize("case", CASES)
def test_sdk_reads_every_expected_message(case):
    expected = golden.load(golden.path(case, ".message.json"))
    message = sdk.whole_message(json.dumps(expected).encode())
    assert sdk.plain(message) == expected


def test_model_is_the_one_the_client_asked_for():
    assert message_of("whole_text")["model"] == golden.PUBLIC_MODEL


def test_invalid_tool_arguments_are_kept_as_text_not_lost():
    calls = [b for b in message_of("whole_tool_calls")["content"] if b["type"] == "tool_use"]
    assert calls[1]["input"] == {RAW_ARGUMENTS: '{"tz": "Europe/Os'}
    assert calls[1]["id"] == "call_2#ts:CiQBVKhc7g=="  # Gemini's thought signature rides in the id
    assert calls[2]["input"] == {}


@pytest.mark.parametrize("completion", [{}, {"choices": []}, {"choices": ["x"]}, {"choices": None}])
def test_an_answer_without_a_choice_is_an_upstream_protocol_error(completion):
    with pytest.raises(UpstreamProtocolError):
        from_canonical(completion, golden.PUBLIC_MODEL)

"""Whole chat.completions as Responses objects: golden cases, the SDK reading them, stored items."""

from __future__ import annotations

import pytest

from gateway.errors import UpstreamProtocolError
from gateway.surfaces.responses.request import to_canonical
from gateway.surfaces.responses.response import from_canonical, input_items, output_items
from tests.surfaces import responses_golden as golden
from tests.surfaces import responses_sdk as sdk


def convert(case: str) -> dict:
    return from_canonical(
        golden.load(case, ".completion.json"),
        golden.load(case, ".request.json"),
        golden.RESPONSE_ID,
        golden.CREATED_AT,
    )


@pytest.mark.parametrize("case", golden.cases(".completion.json"))
def test_whole_answer_matches_golden_file(case):
    golden.check(case, ".response.json", golden.as_json(convert(case)))


@pytest.mark.parametrize("case", golden.cases(".completion.json"))
def test_the_sdk_reads_every_whole_answer(case):
    body = convert(case)
    sdk.validate_response(body)
    parsed = sdk.whole(body)
    assert parsed.id == golden.RESPONSE_ID and parsed.model == golden.PUBLIC_MODEL
    texts = [
        part["text"]
        for item in body["output"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    ]
    assert parsed.output_text == "".join(texts)
    assert [item.id for item in parsed.output] == [item["id"] for item in body["output"]]


def test_length_and_content_filter_make_the_response_incomplete():
    assert convert("max_output_tokens")["incomplete_details"] == {"reason": "max_output_tokens"}
    assert convert("content_filter")["incomplete_details"] == {"reason": "content_filter"}
    assert convert("max_output_tokens")["output"][-1]["status"] == "incomplete"
    assert convert("string_input")["status"] == "completed"


def test_an_answer_without_a_message_is_a_protocol_error():
    with pytest.raises(UpstreamProtocolError):
        from_canonical({"choices": []}, {}, golden.RESPONSE_ID, golden.CREATED_AT)


def test_input_items_get_ids_and_part_lists():
    body = {
        "input": [
            {"role": "user", "content": "Hi"},
            {"type": "function_call_output", "call_id": "c", "output": "ok", "id": "mine"},
        ]
    }
    assert input_items(body, "resp_r1") == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Hi"}],
            "id": "msg_r1_in0",
        },
        {"type": "function_call_output", "call_id": "c", "output": "ok", "id": "mine"},
    ]
    assert input_items({"input": "Hi"}, "resp_r1")[0]["content"] == [{"type": "input_text", "text": "Hi"}]


def test_stored_items_replay_as_the_same_conversation():
    request = golden.load("codex", ".request.json")
    response = convert("codex")
    history = input_items(request, golden.RESPONSE_ID) + output_items(response)
    follow_up = {
        "model": request["model"],
        "input": [{"type": "function_call_output", "call_id": "call_ls_1", "output": "README.md"}],
    }
    messages = to_canonical(follow_up, history)["messages"]
    assert messages[-2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_ls_1",
                "type": "function",
                "function": {"name": "exec_command", "arguments": '{"cmd":"ls -la","workdir":"/work/demo"}'},
            }
        ],
        "reasoning_content": "The user wants a listing; run ls.",
    }
    assert messages[-1] == {"role": "tool", "tool_call_id": "call_ls_1", "content": "README.md"}

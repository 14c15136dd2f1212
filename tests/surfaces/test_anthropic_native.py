"""The native relay to an anthropic upstream: the body goes up as sent, the events come back as sent.

Only the model name, max_tokens and the gateway's own unsigned thinking blocks change; usage is read
on the way through. Stream cases are <case>.native.sse in fixtures/anthropic_messages/.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest

from gateway.errors import UpstreamAuthError, UpstreamProtocolError
from gateway.providers.anthropic.adapter import AnthropicAdapter
from gateway.providers.anthropic.native import (
    UNSIGNED_PREFIX,
    NativeStreamReader,
    count_answer,
    forwarded_headers,
    native_body,
    native_whole,
)
from gateway.providers.base import COUNT_TOKENS, Usage
from gateway.providers.events import Event
from tests.surfaces import messages_golden as golden
from tests.surfaces import messages_grammar as grammar
from tests.surfaces import messages_sdk as sdk

CASES = golden.cases(".native.sse")


def run(case: str, *pieces: bytes):
    raw = golden.path(case, ".native.sse").read_bytes()
    return golden.read_native(golden.decode(*(pieces or (raw,))))


@pytest.mark.parametrize("case", CASES)
def test_native_stream_matches_golden_file(case):
    body, reader, failure = run(case)
    golden.check(golden.path(case, ".native.expected.sse"), body.decode())
    golden.check(golden.path(case, ".native.usage.json"), golden.usage_json(reader.usage))
    error_file = golden.path(case, ".native.error.json")
    if not error_file.exists():
        assert failure is None, f"unexpected {failure!r}"
        return
    assert failure is not None, "the stream should have failed"
    expected = golden.load(error_file)
    assert {k: getattr(failure, k) for k in expected} == expected


@pytest.mark.parametrize("case", CASES)
def test_native_stream_split_at_every_byte_gives_the_same_events(case):
    raw = golden.path(case, ".native.sse").read_bytes()
    whole = run(case)[0]
    for i in range(1, len(raw)):
        assert run(case, raw[:i], raw[i:])[0] == whole, f"split at byte {i}"


@pytest.mark.parametrize("case", CASES)
def test_every_native_stream_obeys_the_grammar_and_the_sdk_reads_it(case):
    raw = golden.path(case, ".native.expected.sse").read_bytes()
    ours = grammar.check_stream(raw)
    if ours["type"] == "error":
        assert sdk.raised(200, raw, streaming=True).body["error"] == ours["error"]
        return
    assert ours["model"] == golden.PUBLIC_MODEL
    got = sdk.plain(sdk.final_message(raw))
    assert got.pop("stop_details") is None
    assert got == ours


def test_events_other_than_message_start_go_back_byte_for_byte():
    raw = golden.path("native_thinking_tool", ".native.sse").read_bytes()
    expected = golden.path("native_thinking_tool", ".native.expected.sse").read_bytes()
    assert raw.split(b"\n\n")[1:] == expected.split(b"\n\n")[1:]


def test_unknown_event_types_and_comments_pass_through():
    reader = NativeStreamReader(golden.PUBLIC_MODEL, golden.PROVIDER)
    assert reader.feed(Event(data=b'{"type":"future_event","x":1}', event="future_event")) == [
        b'event: future_event\ndata: {"type":"future_event","x":1}\n\n'
    ]
    assert reader.feed(Event(comment=b": keep-alive")) == [b": keep-alive\n\n"]


def test_an_in_band_credential_error_is_the_operators_problem():
    reader = NativeStreamReader(golden.PUBLIC_MODEL, golden.PROVIDER)
    data = b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}'
    with pytest.raises(UpstreamAuthError) as caught:
        reader.feed(Event(data=data, event="error"))
    assert "x-api-key" not in caught.value.message


def history_with_unsigned_thinking() -> dict:
    body = golden.load(golden.path("claude_code", ".request.json"))
    unsigned = UNSIGNED_PREFIX + "msg_1"
    body["messages"] += [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "from another model", "signature": unsigned},
                {"type": "thinking", "thinking": "from Claude", "signature": "EqQBCgIYAhIM"},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "README.md"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "# Hi"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": unsigned}]},
    ]
    return body


def test_native_body_changes_only_model_cap_and_unsigned_thinking():
    body = history_with_unsigned_thinking()
    before = copy.deepcopy(body)
    sent = json.loads(native_body(body, "claude-x-20261101", 16000))
    assert body == before, "the client's body must not be modified in place"
    assert (sent.pop("model"), sent.pop("max_tokens")) == ("claude-x-20261101", 16000)
    prompt, thought, result, _unsigned_only = before["messages"]
    expected = {k: v for k, v in before.items() if k not in ("model", "max_tokens")}
    # The unsigned block goes; the turn of nothing but an unsigned block goes with it.
    expected["messages"] = [prompt, dict(thought, content=thought["content"][1:]), result]
    assert sent == expected  # cache_control, context_management, output_config, metadata, tools untouched


def test_forwarded_headers_are_the_allow_list_and_never_the_key():
    headers = {
        "Anthropic-Version": "2023-06-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14,context-management-2025-06-27",
        "x-api-key": "sk-client",
        "Authorization": "Bearer sk-client",
        "x-claude-code-session-id": "s1",
    }
    assert forwarded_headers(headers) == [
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "interleaved-thinking-2025-05-14,context-management-2025-06-27"),
    ]


def test_native_whole_swaps_the_model_and_reads_cache_usage():
    raw = json.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x-20261101",
            "content": [{"type": "text", "text": "Hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 10,
                "cache_creation_input_tokens": 100,
                "cache_read_input_tokens": 1000,
                "output_tokens": 5,
            },
        }
    ).encode()
    body, usage = native_whole(raw, golden.PUBLIC_MODEL)
    assert json.loads(body)["model"] == golden.PUBLIC_MODEL
    assert usage == Usage(prompt_tokens=1110, completion_tokens=5, cached_tokens=1000, cache_write_tokens=100)
    assert sdk.whole_message(body).model == golden.PUBLIC_MODEL


@pytest.mark.parametrize("raw", [b"", b"[]", b'{"type":"error","error":{}}', b"<html>"])
def test_native_whole_refuses_what_is_not_a_message(raw):
    with pytest.raises(UpstreamProtocolError):
        native_whole(raw, golden.PUBLIC_MODEL)


def test_count_tokens_goes_to_its_own_path_with_the_model_swapped_and_nothing_capped():
    adapter = AnthropicAdapter(replace(golden.PROVIDER, api_key="sk-ant-provider", auth="x-api-key"))
    body = history_with_unsigned_thinking()
    headers = forwarded_headers(
        {"anthropic-version": "2023-06-01", "anthropic-beta": "b1", "x-api-key": "sk-c"}
    )
    req = adapter.build_request(body, "claude-x-20261101", True, COUNT_TOKENS, max_output=7, headers=headers)
    assert (req.url, req.stream) == ("https://anthropic.test/v1/messages/count_tokens", False)
    assert json.loads(req.body) == json.loads(native_body(body, "claude-x-20261101", 1)) | {
        "max_tokens": body["max_tokens"]
    }
    sent = dict(req.headers)
    assert (sent["anthropic-version"], sent["anthropic-beta"], sent["x-api-key"]) == (
        "2023-06-01",
        "b1",
        "sk-ant-provider",
    )


def test_count_tokens_answer_is_relayed_as_it_came():
    adapter = AnthropicAdapter(golden.PROVIDER)
    raw = b'{"input_tokens": 2095, "context_management": {"original_input_tokens": 2100}}'
    completion = adapter.parse_response(raw, golden.PUBLIC_MODEL, COUNT_TOKENS)
    assert json.loads(completion.body) == json.loads(raw)
    assert completion.usage is None  # counting is never billed


@pytest.mark.parametrize("raw", [b"", b"{}", b'{"input_tokens": "9"}', b'{"input_tokens": -1}', b"[1]"])
def test_count_tokens_answer_without_a_count_is_the_upstreams_fault(raw):
    with pytest.raises(UpstreamProtocolError):
        count_answer(raw)


def test_a_stream_cut_before_message_delta_bills_the_text_relayed_not_the_placeholder():
    reader = NativeStreamReader(golden.PUBLIC_MODEL, golden.PROVIDER)
    start = {
        "type": "message_start",
        "message": {"id": "m", "usage": {"input_tokens": 20, "output_tokens": 1}},
    }
    reader.feed(Event(data=json.dumps(start).encode(), event="message_start"))
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * 40}}
    for _ in range(10):
        reader.feed(Event(data=json.dumps(delta).encode(), event="content_block_delta"))
    # message_start's output_tokens is a placeholder: 400 bytes of text relayed are ~100 tokens.
    assert reader.usage == Usage(prompt_tokens=20, completion_tokens=100, estimated=True)
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 90}}
    reader.feed(Event(data=json.dumps(end).encode(), event="message_delta"))
    assert reader.usage == Usage(prompt_tokens=20, completion_tokens=90)

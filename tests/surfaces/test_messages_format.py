"""The Messages client format the relay is handed: what it keeps for a native relay, what it answers."""

from __future__ import annotations

import json

import anthropic
import pytest

from gateway.errors import InvalidRequestError, UpstreamProtocolError, UpstreamStatusError
from gateway.providers.base import CHAT, MESSAGES
from gateway.surfaces.anthropic_messages import format as messages_format
from tests.surfaces import messages_golden as golden
from tests.surfaces import messages_sdk as sdk

HEADERS = {
    "Anthropic-Version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    "x-api-key": "sk-the-clients-own-key",
    "Authorization": "Bearer sk-the-clients-own-key",
    "x-claude-code-session-id": "d708f7c0",
}


def test_parse_keeps_the_clients_body_and_only_the_allow_listed_headers():
    body = golden.load(golden.path("claude_code", ".request.json"))
    parsed = messages_format.parse(body, HEADERS)
    assert (parsed.operation, parsed.stream, parsed.output_cap) == (CHAT, True, 32000)
    client = parsed.client
    assert isinstance(client, messages_format.MessagesFormat)
    assert client.native_operation == MESSAGES
    assert client.native_body is body
    assert client.forward_headers == (
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
    )
    assert "sk-the-clients-own-key" not in json.dumps(client.forward_headers)
    assert parsed.body == golden.load(golden.path("claude_code", ".canonical.json"))


def test_parse_counts_images_for_the_hold_and_names_unknown_fields():
    body = golden.load(golden.path("images", ".request.json"))
    parsed = messages_format.parse(dict(body, future_field=True), {})
    assert parsed.images == 2
    assert parsed.client.dropped == ("future_field",)


def test_parse_refuses_what_a_translated_upstream_cannot_carry():
    body = golden.load(golden.path("unknown_field", ".request.json"))
    with pytest.raises(InvalidRequestError) as caught:
        messages_format.parse(body, {})
    assert caught.value.param == "mcp_servers"


def test_answer_is_a_message_the_sdk_reads():
    client = messages_format.parse(golden.load(golden.path("text", ".request.json")), {}).client
    completion = golden.path("whole_tool_calls", ".completion.json").read_bytes()
    answer = client.answer(completion, golden.PUBLIC_MODEL)
    assert json.loads(answer) == golden.load(golden.path("whole_tool_calls", ".message.json"))
    assert sdk.whole_message(answer).stop_reason == "tool_use"


def test_an_unreadable_canonical_answer_is_the_upstreams_fault():
    client = messages_format.parse(golden.load(golden.path("text", ".request.json")), {}).client
    with pytest.raises(UpstreamProtocolError):
        client.answer(b"not json", "acme:claude-x")


def test_error_event_is_anthropics_in_band_error_with_the_request_id():
    client = messages_format.parse(golden.load(golden.path("text", ".request.json")), {}).client
    exc = UpstreamStatusError("Overloaded", status=503, type="overloaded_error")
    event = client.error_event(exc, "req_abc12345")
    assert event.startswith(b"event: error\ndata: ")
    assert event.endswith(b"\n\n")
    data = json.loads(event.split(b"data: ", 1)[1])
    assert data == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": "req_abc12345",
    }
    raw = golden.path("text", ".events.sse").read_bytes().split(b"event: content_block_stop")[0] + event
    raised = sdk.raised(200, raw, streaming=True)
    assert isinstance(raised, anthropic.APIStatusError)
    assert raised.body["error"]["type"] == "overloaded_error"


def test_writer_is_fresh_for_each_stream():
    client = messages_format.parse(golden.load(golden.path("text", ".request.json")), {}).client
    assert client.writer("m") is not client.writer("m")

"""Canonical chunk streams as Messages events: golden cases, split at every byte, checked for grammar
and read back by the anthropic SDK's own stream machinery."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import GatewayError, UpstreamProtocolError, UpstreamTimeoutError
from gateway.providers.events import DONE, KEEP_ALIVE, encode_data
from gateway.surfaces.anthropic_messages.stream import MessagesStreamWriter
from tests.support.examples import examples
from tests.surfaces import messages_golden as golden
from tests.surfaces import messages_grammar as grammar
from tests.surfaces import messages_sdk as sdk

CASES = golden.cases(".chunks.sse")


def run(case: str, *pieces: bytes):
    raw = golden.path(case, ".chunks.sse").read_bytes()
    error_file = golden.path(case, ".upstream_error.json")
    upstream_error = golden.exception(golden.load(error_file)) if error_file.exists() else None
    return golden.write_events(golden.decode(*(pieces or (raw,))), upstream_error)


@pytest.mark.parametrize("case", CASES)
def test_events_match_golden_file(case):
    body, writer = run(case)
    golden.check(golden.path(case, ".events.sse"), body.decode())
    golden.check(golden.path(case, ".usage.json"), golden.usage_json(writer.usage))


@pytest.mark.parametrize("case", CASES)
def test_stream_split_at_every_byte_gives_the_same_events(case):
    raw = golden.path(case, ".chunks.sse").read_bytes()
    whole, _ = run(case)
    for i in range(1, len(raw)):
        assert run(case, raw[:i], raw[i:])[0] == whole, f"split at byte {i}"


@pytest.mark.parametrize("case", CASES)
def test_every_expected_stream_obeys_the_event_grammar(case):
    grammar.check_stream(golden.path(case, ".events.sse").read_bytes())


@pytest.mark.parametrize("case", CASES)
def test_sdk_builds_the_same_message_from_every_expected_stream(case):
    raw = golden.path(case, ".events.sse").read_bytes()
    ours = grammar.check_stream(raw)
    if ours["type"] == "error":
        exc = sdk.raised(200, raw, streaming=True)
        assert exc.body["error"] == ours["error"]
        return
    got = sdk.plain(sdk.final_message(raw))
    assert got.pop("stop_details") is None  # the SDK's accumulator copies it from message_delta
    assert got == ours


def feed_all(writer: MessagesStreamWriter, *chunks: dict) -> bytes:
    return b"".join(b for c in chunks for b in writer.feed(encode_data(json.dumps(c).encode())))


def delta(**fields) -> dict:
    return {"id": "c1", "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


def test_a_keep_alive_becomes_a_ping_event():
    writer = MessagesStreamWriter(golden.PUBLIC_MODEL, golden.MESSAGE_ID)
    first = b"".join(writer.feed(KEEP_ALIVE))
    ping = b'event: ping\ndata: {"type":"ping"}\n\n'
    assert first.startswith(b"event: message_start\n") and first.endswith(ping)
    assert writer.feed(KEEP_ALIVE) == [ping]


def test_interleaved_tool_call_arguments_are_a_protocol_error():
    writer = MessagesStreamWriter(golden.PUBLIC_MODEL, golden.MESSAGE_ID)
    feed_all(writer, delta(tool_calls=[{"index": 0, "id": "a", "function": {"name": "f"}}]))
    feed_all(writer, delta(tool_calls=[{"index": 1, "id": "b", "function": {"name": "g"}}]))
    with pytest.raises(UpstreamProtocolError):
        feed_all(writer, delta(tool_calls=[{"index": 0, "function": {"arguments": "{}"}}]))


def test_relayed_characters_count_text_reasoning_and_tool_calls():
    writer = MessagesStreamWriter(golden.PUBLIC_MODEL, golden.MESSAGE_ID)
    feed_all(
        writer,
        delta(reasoning_content="思考"),
        delta(content="héllo"),
        delta(tool_calls=[{"index": 0, "id": "a", "function": {"name": "fn", "arguments": '{"a":1}'}}]),
    )
    assert writer.relayed_chars == 2 + 5 + 2 + 7


def test_nothing_follows_an_error_event():
    writer = MessagesStreamWriter(golden.PUBLIC_MODEL, golden.MESSAGE_ID)
    feed_all(writer, delta(content="Hi"))
    error = writer.error(UpstreamTimeoutError())
    assert error.startswith(b'event: error\ndata: {"type":"error","error":{"type":"timeout_error"')
    assert writer.feed(DONE) == [] and writer.finish() == []


def test_a_stream_of_only_done_is_an_empty_whole_message():
    body = b"".join(MessagesStreamWriter(golden.PUBLIC_MODEL, golden.MESSAGE_ID).feed(DONE))
    assert grammar.check_stream(body)["content"] == []


# Made-up chunks: the fields the writer reads, with values of the right and the wrong types.
SMALL = st.none() | st.integers(0, 2) | st.text(max_size=5)
FUNCTION = st.fixed_dictionaries({}, optional={"name": st.text(max_size=3), "arguments": st.text(max_size=3)})
ITEM = st.dictionaries(
    st.sampled_from(["index", "id", "function", "type", "signature", "thinking", "data"]), SMALL | FUNCTION
)
DELTA = st.dictionaries(
    st.sampled_from(["content", "reasoning_content", "tool_calls", "thinking_blocks", "role"]),
    st.none() | st.text(max_size=5) | st.lists(ITEM, max_size=2),
)
FINISH = st.sampled_from([None, "stop", "length", "tool_calls", 3])
CHOICE = st.fixed_dictionaries(
    {}, optional={"index": st.integers(0, 1), "delta": DELTA, "finish_reason": FINISH}
)
COUNTS = st.sampled_from(["prompt_tokens", "completion_tokens"])
USAGE = st.none() | st.dictionaries(COUNTS, st.integers(-1, 9))
CHUNK = st.fixed_dictionaries({"choices": st.lists(CHOICE, max_size=2)}, optional={"usage": USAGE})


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(CHUNK, max_size=8), st.booleans())
def test_any_chunk_sequence_gives_a_valid_stream_or_a_gateway_error(chunks, done):
    writer = MessagesStreamWriter(golden.PUBLIC_MODEL, golden.MESSAGE_ID)
    out: list[bytes] = []
    try:
        for chunk in chunks:
            out += writer.feed(encode_data(json.dumps(chunk).encode()))
        out += writer.feed(DONE) if done else writer.finish()
    except GatewayError as exc:
        out.append(writer.error(exc))
    grammar.check_stream(b"".join(out), tool_json=False)

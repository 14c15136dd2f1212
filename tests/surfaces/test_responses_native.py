"""The native Responses relay: upstream events re-emitted with the client's model, usage read."""

from __future__ import annotations

import json

import pytest

from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.providers.responses.native import NativeStreamReader, native_body, native_whole
from tests.surfaces import responses_golden as golden
from tests.surfaces import responses_grammar as grammar
from tests.surfaces import responses_sdk as sdk

STREAMS = golden.cases(".native.sse")


def run(case: str, pieces: list[bytes] | None = None) -> tuple[bytes, NativeStreamReader]:
    reader = NativeStreamReader(golden.PUBLIC_MODEL, "acme")
    out = []
    for event in golden.events_of(golden.path(case, ".native.sse").read_bytes(), pieces):
        out += reader.feed(event)
    try:
        out += reader.finish()
    except GatewayError as exc:
        out.append(reader.error(exc))
    return b"".join(out), reader


@pytest.mark.parametrize("case", STREAMS)
def test_native_stream_matches_golden_file(case):
    body, reader = run(case)
    golden.check(case, ".native.expected.sse", body.decode())
    golden.check(case, ".native.usage.json", golden.usage_json(reader.usage))


@pytest.mark.parametrize("case", STREAMS)
def test_native_stream_split_at_every_byte_gives_the_same_events(case):
    whole, _ = run(case)
    for pieces in golden.splits(golden.path(case, ".native.sse").read_bytes()):
        assert run(case, pieces)[0] == whole, f"split at {len(pieces[0])}"


@pytest.mark.parametrize("case", STREAMS)
def test_native_stream_keeps_the_grammar_and_swaps_only_the_model(case):
    body, reader = run(case)
    events = grammar.check_stream(body, first_sequence=None)
    upstream = grammar.parse(golden.path(case, ".native.sse").read_bytes())
    assert all(e["response"]["model"] == golden.PUBLIC_MODEL for e in events if "response" in e)
    for got, sent in zip(events, upstream):
        if "response" in sent:
            sent = dict(sent, response=dict(sent["response"], model=golden.PUBLIC_MODEL))
        assert got == sent
    terminal = next(e for e in events if e["type"] in grammar.TERMINAL)
    assert reader.response_id == "resp_up_77" and reader.response == terminal["response"]


def test_encrypted_reasoning_reaches_the_client_untouched():
    body, _ = run("native_text")
    done = [e for e in grammar.parse(body) if e["type"] == "response.output_item.done"]
    assert done[0]["item"]["encrypted_content"] == "gAAAAB-upstream-cipher=="
    assert b'"obfuscation":"x9"' in body


def test_the_sdk_reads_the_relayed_stream():
    body, _ = run("native_text")
    final = sdk.stream_final(body)
    assert final.model == golden.PUBLIC_MODEL and final.output_text == "Hello there!"
    assert final.usage.input_tokens_details.cached_tokens == 1024


def test_a_cut_stream_ends_with_our_failure_numbered_after_the_upstream():
    body, reader = run("native_cut")
    events = grammar.parse(body)
    assert [(e["type"], e["sequence_number"]) for e in events[-2:]] == [
        ("response.failed", 12),
        ("error", 13),
    ]
    assert events[-2]["response"]["id"] == "resp_up_77"
    assert reader.usage is None and reader.error(GatewayError()) == b""


def test_native_body_swaps_the_model_and_holds_the_cap():
    body = golden.load("codex_second_turn", ".request.json")
    body["max_output_tokens"] = 100_000
    sent = json.loads(native_body(body, "gpt-up-2026", 32_000))
    assert sent == dict(body, model="gpt-up-2026", max_output_tokens=32_000)
    assert "max_output_tokens" not in golden.load("codex", ".request.json")
    assert json.loads(native_body(golden.load("codex", ".request.json"), "up", 8))["max_output_tokens"] == 8


@pytest.mark.parametrize("case", golden.cases(".native.json"))
def test_native_whole_matches_golden_file(case):
    body, usage, response = native_whole(golden.path(case, ".native.json").read_bytes(), golden.PUBLIC_MODEL)
    golden.check(case, ".native.expected.json", golden.as_json(json.loads(body)))
    golden.check(case, ".native.usage.json", golden.usage_json(usage))
    assert response["model"] == golden.PUBLIC_MODEL
    assert sdk.whole(response).model == golden.PUBLIC_MODEL


@pytest.mark.parametrize("raw", [b"<html>", b"[]", b'{"object": "chat.completion"}'])
def test_a_whole_answer_that_is_not_a_response_is_a_protocol_error(raw):
    with pytest.raises(UpstreamProtocolError):
        native_whole(raw, golden.PUBLIC_MODEL)

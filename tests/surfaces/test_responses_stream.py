"""Canonical chunk streams as Responses event streams: golden cases, every byte split, the event
grammar, the openai SDK reading each stream, and the in-band failure.
"""

from __future__ import annotations

import json

import openai
import pytest

from gateway.errors import GatewayError, InvalidRequestError, UpstreamProtocolError
from gateway.surfaces.responses.request import to_canonical
from gateway.surfaces.responses.response import from_canonical
from gateway.surfaces.responses.stream import ResponsesStreamWriter
from tests.surfaces import responses_golden as golden
from tests.surfaces import responses_grammar as grammar
from tests.surfaces import responses_sdk as sdk

STREAMS = golden.cases(".chunks.sse")


def run(case: str, pieces: list[bytes] | None = None) -> tuple[bytes, ResponsesStreamWriter]:
    """Feed a case's frames through a fresh writer, ending it as the relay would."""
    writer = ResponsesStreamWriter(golden.load(case, ".request.json"), golden.RESPONSE_ID, golden.CREATED_AT)
    raw = golden.path(case, ".chunks.sse").read_bytes()
    out = []
    for frame in golden.frames_of(golden.events_of(raw, pieces)):
        out += writer.feed(frame)
    failure = golden.raised(case)
    if failure is not None:
        return b"".join(out) + writer.error(failure), writer
    try:
        out += writer.finish()
    except GatewayError as exc:  # a stream cut before its answer finished
        out.append(writer.error(exc))
    return b"".join(out), writer


@pytest.mark.parametrize("case", STREAMS)
def test_stream_matches_golden_file(case):
    body, writer = run(case)
    golden.check(case, ".events.sse", body.decode())
    golden.check(case, ".usage.json", golden.usage_json(writer.usage))


@pytest.mark.parametrize("case", STREAMS)
def test_stream_split_at_every_byte_gives_the_same_events(case):
    whole, _ = run(case)
    raw = golden.path(case, ".chunks.sse").read_bytes()
    for pieces in golden.splits(raw):
        assert run(case, pieces)[0] == whole, f"split at {len(pieces[0])}"


@pytest.mark.parametrize("case", STREAMS)
def test_stream_follows_the_event_grammar(case):
    body, writer = run(case)
    events = grammar.check_stream(body)
    assert next(e for e in events if e["type"] in grammar.TERMINAL)["response"] == writer.response
    sdk.validate_events(events)
    sdk.validate_response(writer.response)


@pytest.mark.parametrize("case", [c for c in STREAMS if golden.path(c, ".completion.json").exists()])
def test_streamed_and_whole_answers_make_the_same_response(case):
    _, writer = run(case)
    whole = from_canonical(
        golden.load(case, ".completion.json"),
        golden.load(case, ".request.json"),
        golden.RESPONSE_ID,
        golden.CREATED_AT,
    )
    assert writer.response == whole


@pytest.mark.parametrize("case", STREAMS)
def test_the_sdk_reads_every_stream(case):
    body, writer = run(case)
    status = writer.response["status"]
    if status == "failed":
        # The live API's nested error event makes the SDK raise, after it handed over response.failed.
        with pytest.raises(openai.APIError, match=writer.response["error"]["message"][:20]):
            sdk.stream_events(body)
        return
    events = sdk.stream_events(body)
    assert events[-1].type == f"response.{status}"
    usage = events[-1].response.usage
    assert (usage.to_dict() if usage is not None else None) == writer.response["usage"]
    if status == "completed":
        request = golden.load(case, ".request.json")
        tools = [t for t in request.get("tools", ()) if t["type"] == "function"]
        final = sdk.stream_final(body, tools)
        assert final.id == golden.RESPONSE_ID
        assert [item.id for item in final.output] == [item["id"] for item in writer.response["output"]]
        texts = [
            p["text"]
            for i in writer.response["output"]
            if i["type"] == "message"
            for p in i["content"]
            if "text" in p
        ]
        assert final.output_text == "".join(texts)


def test_codex_gets_the_call_with_its_id_name_and_whole_arguments():
    body, _ = run("codex")
    done = [e for e in grammar.parse(body) if e["type"] == "response.output_item.done"]
    assert [d["item"]["type"] for d in done] == ["reasoning", "function_call"]
    call = done[1]["item"]
    assert (call["call_id"], call["name"]) == ("call_ls_1", "exec_command")
    assert json.loads(call["arguments"]) == {"cmd": "ls -la", "workdir": "/work/demo"}
    usage = grammar.parse(body)[-1]["response"]["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] == 4992
    assert usage["output_tokens_details"]["reasoning_tokens"] == 12


def test_a_failed_stream_leaves_the_cut_item_undone():
    body, writer = run("mid_stream_error")
    events = grammar.parse(body)
    assert [e["type"] for e in events[-2:]] == ["response.failed", "error"]
    assert not [e for e in events if e["type"] == "response.output_item.done"]
    assert writer.response["output"][0]["status"] == "incomplete"
    assert events[-1]["error"] == {
        "type": "server_error",
        "code": "upstream_error",
        "message": "Provider 'acme' sent an error in the stream: overloaded.",
        "param": None,
    }
    assert events[-1]["code"] == "upstream_error" and events[-1]["message"] == events[-1]["error"]["message"]


def test_comments_pass_through_and_nothing_follows_the_end():
    writer = ResponsesStreamWriter({"model": "m"}, "resp_x", 1)
    assert writer.feed(b": keep-alive\n\n") == [b": keep-alive\n\n"]
    frame = b'data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}]}\n\n'
    assert len(writer.feed(frame)) == 5  # created, in_progress, item added, part added, delta
    assert writer.finish()[-1].startswith(b"event: response.completed\n")
    assert writer.finish() == [] and writer.feed(frame) == [] and writer.error(GatewayError()) == b""


def call_frame(call: dict) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


@pytest.mark.parametrize(
    "frames",
    [
        [b"data: not json\n\n"],
        [b"data: [1, 2]\n\n"],
        [call_frame({"index": "0"})],
        [
            call_frame({"index": 0, "id": "a", "function": {"name": "f"}}),
            call_frame({"index": 1, "id": "b", "function": {"name": "g"}}),
            call_frame({"index": 0, "function": {"arguments": "{}"}}),
        ],
    ],
    ids=["not-json", "not-an-object", "index-not-int", "interleaved-calls"],
)
def test_unreadable_chunks_are_protocol_errors(frames):
    writer = ResponsesStreamWriter({"model": "m"}, "resp_x", 1)
    with pytest.raises(UpstreamProtocolError):
        for frame in frames:
            writer.feed(frame)


def test_an_error_before_the_first_byte_is_the_openai_envelope_the_sdk_raises():
    with pytest.raises(InvalidRequestError) as caught:
        to_canonical(golden.load("refuse_forced_web_search", ".request.json"))
    body = json.dumps(caught.value.to_body("req_123")).encode()
    client = sdk.client(400, body, "application/json")
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="m", input="Hi", stream=True)
    assert raised.value.code == "invalid_request" and raised.value.param == "tool_choice"
    assert raised.value.body["message"] == caught.value.message

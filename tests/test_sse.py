"""The SSE decoder and encoder: every fixture split at every byte offset, and the spec's corner cases."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.providers.events import DONE, KEEP_ALIVE, Event, encode_comment, encode_data
from gateway.upstream.sse import Decoder

FIXTURES = sorted((Path(__file__).parent / "providers" / "fixtures").rglob("*.sse"))


def decode(*pieces: bytes) -> list[Event]:
    decoder = Decoder()
    events = [e for piece in pieces for e in decoder.feed(piece)]
    return events + decoder.flush()


def fixture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_there_are_fixtures_to_split():
    assert len(FIXTURES) >= 20


@pytest.mark.parametrize("path", FIXTURES, ids=fixture_id)
def test_fixture_decodes_the_same_split_at_every_byte_offset(path):
    raw = path.read_bytes()
    whole = decode(raw)
    assert whole, "a fixture with no events tests nothing"
    for cut in range(1, len(raw)):
        assert decode(raw[:cut], raw[cut:]) == whole, f"split at byte {cut}"


@pytest.mark.parametrize("path", FIXTURES, ids=fixture_id)
def test_fixture_decodes_the_same_byte_by_byte(path):
    raw = path.read_bytes()
    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == decode(raw)


@pytest.mark.parametrize("path", [p for p in FIXTURES if p.name.endswith(".expected.sse")], ids=fixture_id)
def test_what_the_gateway_sends_reencodes_to_the_same_bytes(path):
    # Client-bound streams use one framing only: data or comment lines, each ended by a blank line.
    raw = path.read_bytes()
    events = decode(raw)
    assert all(e.event is None for e in events)
    again = b"".join(
        encode_comment(e.comment) if e.comment is not None else encode_data(e.data) for e in events
    )
    assert again == raw


@pytest.mark.parametrize("newline", [b"\n", b"\r", b"\r\n"], ids=["LF", "CR", "CRLF"])
def test_every_line_ending_ends_lines_and_events(newline):
    raw = b"data: a" + newline + newline + b"data: b" + newline + newline
    assert decode(raw) == [Event(data=b"a"), Event(data=b"b")]


def test_mixed_line_endings_in_one_stream():
    assert decode(b"data: a\r\n\rdata: b\n\r\n") == [Event(data=b"a"), Event(data=b"b")]


def test_crlf_split_between_reads_is_one_line_ending():
    # Were the LF read as a second line ending, "x" and "y" would be two events instead of one.
    assert decode(b"data: x\r", b"\ndata: y\r\n\r\n") == [Event(data=b"x\ny")]


def test_crlf_split_around_an_empty_read_is_still_one_line_ending():
    assert decode(b"data: x\r", b"", b"\ndata: y\r\n\r\n") == [Event(data=b"x\ny")]


def test_cr_at_the_end_of_a_read_dispatches_without_waiting():
    decoder = Decoder()
    assert decoder.feed(b"data: x\r\r") == [Event(data=b"x")]
    assert decoder.feed(b"\ndata: y\n\n") == [Event(data=b"y")]


def test_comments_are_yielded_as_comment_events_with_their_colon():
    assert decode(b": keep-alive\n\n:OPENROUTER PROCESSING\n\ndata: 1\n\n") == [
        Event(comment=b": keep-alive"),
        Event(comment=b":OPENROUTER PROCESSING"),
        Event(data=b"1"),
    ]


def test_comment_inside_an_event_does_not_end_it():
    assert decode(b"data: a\n: ping\ndata: b\n\n") == [Event(comment=b": ping"), Event(data=b"a\nb")]


def test_multi_line_data_is_joined_with_newlines():
    assert decode(b'data: {"a":\ndata: 1}\n\n') == [Event(data=b'{"a":\n1}')]


def test_only_one_space_after_the_colon_is_stripped():
    assert decode(b"data:{}\n\ndata:  two\n\ndata\n\n") == [
        Event(data=b"{}"),
        Event(data=b" two"),
        Event(data=b""),
    ]


def test_event_name_is_kept():
    assert decode(b"event: error\ndata: {}\n\n") == [Event(data=b"{}", event="error")]


def test_id_retry_and_unknown_fields_are_ignored():
    assert decode(b"id: 7\nretry: 1000\nfoo: bar\ndata: x\n\n") == [Event(data=b"x")]


def test_id_alone_dispatches_nothing():
    # openai-python yields an id-only event as empty data and fails (docs/wire-formats.md#sse-never-send-id).
    assert decode(b"id: 1\n\n: ping\n\n") == [Event(comment=b": ping")]


def test_blank_lines_before_the_first_event_are_ignored():
    assert decode(b"\n\n\r\n\r\rdata: x\n\n") == [Event(data=b"x")]


def test_unterminated_last_event_is_dispatched_by_flush():
    decoder = Decoder()
    assert decoder.feed(b'data: {"a":1}\n\ndata: {"usage":1}') == [Event(data=b'{"a":1}')]
    assert decoder.flush() == [Event(data=b'{"usage":1}')]


def test_event_missing_only_its_blank_line_is_dispatched_by_flush():
    decoder = Decoder()
    assert decoder.feed(b"data: last\n") == []
    assert decoder.flush() == [Event(data=b"last")]


def test_flush_with_nothing_pending_yields_nothing():
    decoder = Decoder()
    decoder.feed(b"data: x\n\n")
    assert decoder.flush() == []


def test_bare_json_line_is_taken_as_data():
    # Ollama writes its error into the stream without "data:" (docs/wire-formats.md#sse-bare-json-errors).
    body = b'{"error":{"message":"boom"}}'
    assert decode(body + b"\n") == [Event(data=body)]
    assert decode(b"data: 1\n\n" + body) == [Event(data=b"1"), Event(data=body)]


def test_a_pretty_printed_bare_json_error_is_one_data_event_however_it_is_split():
    # Gemini can write its error pretty-printed over several lines, without "data:".
    body = b'{\n  "error": {\n    "code": 503,\n    "message": "overloaded",\n    "status": "UNAVAILABLE"'
    body += b"\n  }\n}"
    raw = b'data: {"candidates": []}\n\n' + body + b"\n"
    expected = [Event(data=b'{"candidates": []}'), Event(data=body)]
    assert decode(raw) == expected
    for cut in range(1, len(raw)):
        assert decode(raw[:cut], raw[cut:]) == expected, cut


def test_a_bare_body_that_never_parses_still_reaches_the_translator():
    assert decode(b"{\n  broken\n\n") == [Event(data=b"{\n  broken")]


def test_non_ascii_and_invalid_utf8_pass_through_as_bytes():
    assert decode("data: Grüße 你好\n\n".encode()) == [Event(data="Grüße 你好".encode())]
    assert decode(b"data: \xff\xfe\n\n") == [Event(data=b"\xff\xfe")]


def test_several_mib_data_line_in_small_reads_is_whole_and_linear():
    payload = b'{"arguments":"' + b"x" * (6 * 1024 * 1024) + b'"}'
    raw = b"data: " + payload + b"\n\n"
    assert decode(raw) == [Event(data=payload)]
    started = time.perf_counter()
    events = decode(*(raw[i : i + 1024] for i in range(0, len(raw), 1024)))
    elapsed = time.perf_counter() - started
    assert events == [Event(data=payload)]
    # Joining the line on every read is quadratic: over ten seconds here. Linear takes ~0.1 s.
    assert elapsed < 3, f"{elapsed:.1f}s to decode 6 MiB in 1 KiB reads"


def test_encoders_frame_every_event_with_a_blank_line():
    assert encode_data(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_comment(b": keep-alive") == KEEP_ALIVE == b": keep-alive\n\n"
    assert DONE == b"data: [DONE]\n\n"

"""The event-grammar checker rejects broken streams, so a pass over our streams means something."""

from __future__ import annotations

import json

import pytest

from tests.surfaces import responses_golden as golden
from tests.surfaces import responses_grammar as grammar


def frames(case: str) -> list[bytes]:
    raw = golden.path(case, ".events.sse").read_bytes()
    return [block + b"\n\n" for block in raw[:-2].split(b"\n\n")]


def rewrite(frame: bytes, change) -> bytes:
    head, data = frame[:-2].split(b"\ndata: ")
    event = json.loads(data)
    change(event)
    return head + b"\ndata: " + json.dumps(event).encode() + b"\n\n"


def drop_type(case: str, kind: str) -> list[bytes]:
    return [f for f in frames(case) if f"event: {kind}\n".encode() not in f]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda f: f[:4] + f[5:],  # a delta lost: sequence gap, texts disagree
        lambda f: f + [f[-1]],  # two terminal events
        lambda f: f[:2] + f[3:],  # output_item.added missing
        lambda f: f[:3] + [rewrite(f[3], lambda e: e.update(item_id="msg_other"))] + f[4:],
        lambda f: f[:4] + [rewrite(f[4], lambda e: e.update(delta="Hey"))] + f[5:],
        lambda f: [f[1], f[0]] + f[2:],  # in_progress before created
        lambda f: f[:-1],  # no terminal event
    ],
    ids=["gap", "two-terminals", "no-added", "wrong-item-id", "delta-mismatch", "order", "no-terminal"],
)
def test_broken_streams_fail_the_check(mutate):
    assert grammar.check_stream(b"".join(frames("string_input")))
    with pytest.raises((AssertionError, KeyError, IndexError)):
        grammar.check_stream(b"".join(mutate(frames("string_input"))))


def test_an_item_left_open_fails_unless_the_stream_failed():
    broken = drop_type("parallel_calls", "response.output_item.done")
    with pytest.raises(AssertionError):
        grammar.check_stream(b"".join(_renumber(broken)))


def _renumber(blocks: list[bytes]) -> list[bytes]:
    return [rewrite(b, lambda e, n=n: e.update(sequence_number=n)) for n, b in enumerate(blocks)]

"""The byte-level path for plain content chunks: taken only where the full parse would do the same."""

from __future__ import annotations

import json

import pytest

from gateway.config.providers import ProviderConfig
from gateway.providers.events import Event
from gateway.providers.openai import OpenAIAdapter
from gateway.providers.plain_chunk import content_weight

PLAIN = (
    b'{"id":"c1","object":"chat.completion.chunk","created":7,"model":"up-model",'
    b'"choices":[{"index":0,"delta":{"content":"Hello there"},"finish_reason":null}]}'
)


def test_a_plain_content_chunk_is_weighed_from_its_bytes():
    assert content_weight(PLAIN) == len("Hello there")
    two = PLAIN.replace(b"}]}", b'},{"index":1,"delta":{"content":"abc"},"finish_reason":null}]}')
    assert content_weight(two) == len("Hello there") + 3


@pytest.mark.parametrize(
    "data",
    [
        PLAIN.replace(b"null", b'"stop"'),  # a finishing chunk is held for the usage
        PLAIN.replace(b"Hello there", b"line\\nbreak"),  # an escape: the parse measures the text
        PLAIN.replace(b"Hello there", "héllo".encode()),  # non-ASCII weighs more than a byte
        PLAIN.replace(b"}]}", b'}],"usage":{"prompt_tokens":1,"completion_tokens":2}}'),
        PLAIN.replace(b'"content":"Hello there"', b'"role":"assistant","content":""'),
        PLAIN.replace(b'"content":"Hello there"', b'"reasoning_content":"hm"'),
        PLAIN.replace(b'"content":"Hello there"', b'"content":"a","tool_calls":[]'),
        PLAIN[:-1],  # cut short: the parse refuses it
        PLAIN[:-3],  # cut short after a delta's closing brace
        b'{"error":{"message":"boom"}}',
    ],
)
def test_anything_else_takes_the_full_parse(data):
    assert content_weight(data) is None


def translator(client_usage: bool):
    adapter = OpenAIAdapter(ProviderConfig(name="up", type="openai", base_url="http://up.invalid/v1"))
    return adapter.translator("up:public", "up-model", client_usage)


@pytest.mark.parametrize("client_usage", [False, True])
def test_the_byte_path_relays_what_the_full_parse_would(client_usage):
    first = PLAIN.replace(b'"content":"Hello there"', b'"role":"assistant","content":""')
    fast, slow = translator(client_usage), translator(client_usage)
    fast.feed(Event(data=first))
    slow.feed(Event(data=first))
    out = fast.feed(Event(data=PLAIN))
    # The same chunk with a space after a colon is no longer "plain": it takes the full parse.
    slow_out = slow.feed(Event(data=PLAIN.replace(b'"delta":{', b'"delta": {')))
    assert json.loads(out[0][6:]) == json.loads(slow_out[0][6:])
    assert json.loads(out[0][6:])["model"] == "up:public"
    assert fast.relayed_bytes == slow.relayed_bytes == len("Hello there")

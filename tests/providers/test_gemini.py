"""The Gemini adapter with plain data: golden requests, answers and streams, embeddings and errors.

The golden-file convention is in golden.py; the cases are in fixtures/gemini/. Gemini frames its
streams with CRLF, so most .sse cases do too.
"""

from __future__ import annotations

import json

import pytest

from gateway.config.providers import ProviderConfig
from gateway.errors import InvalidRequestError, UpstreamAuthError, UpstreamStatusError
from gateway.providers.base import EMBEDDINGS
from gateway.providers.gemini.adapter import GeminiAdapter
from tests.providers import golden

SECRET = "AIza-gemini-secret-123"
BASE_URL = "http://10.0.0.9:9001/v1beta"


def adapter() -> GeminiAdapter:
    provider = ProviderConfig(
        name="acme", type="gemini", base_url=BASE_URL, api_key=SECRET, auth="x-goog-api-key"
    )
    return golden.pin(GeminiAdapter(provider))


GOLDEN = golden.Golden.of("gemini", adapter)


@pytest.mark.parametrize("case, suffix, client_usage", GOLDEN.stream_params())
def test_stream_matches_golden_file(case, suffix, client_usage):
    GOLDEN.check_stream(case, suffix, client_usage)


@pytest.mark.parametrize("case", GOLDEN.cases(".sse"))
def test_stream_split_at_any_byte_gives_the_same_answer(case):
    GOLDEN.check_stream_split(case)


@pytest.mark.parametrize("case", GOLDEN.cases(".response.json"))
def test_whole_answer_matches_golden_file(case):
    GOLDEN.check_response(case)


@pytest.mark.parametrize("case", GOLDEN.cases(".request.json"))
def test_request_matches_golden_file(case):
    GOLDEN.check_request(case)


def test_every_golden_file_belongs_to_a_case():
    assert GOLDEN.orphans() == []


def test_crlf_fixture_really_uses_crlf():
    assert b"\r\n\r\n" in (GOLDEN.folder / "text_crlf.sse").read_bytes()


def test_stream_and_whole_urls_and_the_key_header():
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    streamed = adapter().build_request(body, "gemini-2.5-flash", True)
    assert streamed.url == BASE_URL + "/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    whole = adapter().build_request(body, "gemini-2.5-flash", False)
    assert whole.url == BASE_URL + "/models/gemini-2.5-flash:generateContent"
    assert dict(whole.headers)["x-goog-api-key"] == SECRET and SECRET not in whole.url


def test_thought_signature_round_trips_through_the_tool_call_id():
    raw = (GOLDEN.folder / "whole_function_call.response.json").read_bytes()
    answer = json.loads(adapter().parse_response(raw, golden.PUBLIC_MODEL).body)
    call = answer["choices"][0]["message"]["tool_calls"][0]
    body = {
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
        ]
    }
    sent = json.loads(adapter().build_request(body, "m", False).body)
    model_turn, tool_turn = sent["contents"][1], sent["contents"][2]
    assert model_turn["parts"][0]["thoughtSignature"] == "CiQBVKhc7sig=="
    assert tool_turn["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "response": {"content": "sunny"},
    }


def test_tool_message_without_an_earlier_call_is_a_400():
    body = {"messages": [{"role": "tool", "tool_call_id": "call_x", "content": "1"}]}
    with pytest.raises(InvalidRequestError) as info:
        adapter().build_request(body, "m", False)
    assert info.value.param == "messages[0].tool_call_id"


def test_embeddings_request_and_answer():
    req = adapter().build_request(
        {"input": ["a", "b"], "dimensions": 8}, "text-embedding-004", False, EMBEDDINGS
    )
    assert req.url == BASE_URL + "/models/text-embedding-004:batchEmbedContents"
    sent = json.loads(req.body)
    assert sent["requests"][1] == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "b"}]},
        "outputDimensionality": 8,
    }
    raw = json.dumps({"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25, 0.0]}]}).encode()
    completion = adapter().parse_response(raw, golden.PUBLIC_MODEL, EMBEDDINGS)
    body = json.loads(completion.body)
    assert body["data"][1] == {"object": "embedding", "index": 1, "embedding": [0.25, 0.0]}
    assert completion.usage is None, "Gemini reports no tokens: the relay estimates them"


def test_embeddings_of_token_ids_are_refused():
    with pytest.raises(InvalidRequestError) as info:
        adapter().build_request({"input": [1, 2, 3]}, "m", False, EMBEDDINGS)
    assert info.value.param == "input"


def test_invalid_api_key_400_is_the_operators_502():
    raw = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
        }
    }
    error = adapter().parse_error(400, json.dumps(raw).encode(), {})
    assert isinstance(error, UpstreamAuthError)
    assert (error.status, error.code) == (502, "upstream_auth_failed")
    assert "'acme'" in error.message and "API key not valid" not in error.message


@pytest.mark.parametrize(
    "status, name, expected",
    [
        (400, "INVALID_ARGUMENT", (400, "invalid_request_error", "invalid_argument")),
        (404, "NOT_FOUND", (404, "invalid_request_error", "not_found")),
        (429, "RESOURCE_EXHAUSTED", (429, "invalid_request_error", "rate_limit_exceeded")),
        (503, "UNAVAILABLE", (503, "server_error", "upstream_error")),
    ],
)
def test_google_errors_keep_message_and_status(status, name, expected):
    raw = [{"error": {"code": status, "message": f"{name} for {SECRET}", "status": name}}]
    error = adapter().parse_error(status, json.dumps(raw).encode(), {"retry-after": "5"})
    assert isinstance(error, UpstreamStatusError)
    assert (error.status, error.type, error.code) == expected
    assert error.message == f"{name} for [redacted]"


@pytest.mark.parametrize(
    "effort, thinking",
    [
        ("none", {"thinkingBudget": 0, "includeThoughts": False}),
        ("low", {"thinkingBudget": 1024, "includeThoughts": True}),
        ("high", {"thinkingBudget": 24576, "includeThoughts": True}),
    ],
)
def test_reasoning_effort_becomes_a_thinking_budget(effort, thinking):
    body = {"messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": effort}
    config = json.loads(adapter().build_request(body, "gemini-2.5-flash", False).body)["generationConfig"]
    assert config["thinkingConfig"] == thinking


def test_no_reasoning_effort_sends_no_thinking_config():
    body = {"messages": [{"role": "user", "content": "Hi"}], "temperature": 0.5}
    sent = json.loads(adapter().build_request(body, "gemini-2.5-flash", False).body)
    assert "thinkingConfig" not in sent["generationConfig"]

"""The OpenAI-format adapter with plain data: golden SSE streams, whole bodies, error bodies, requests.

The golden-file convention is in golden.py; the cases are in fixtures/openai/.
"""

from __future__ import annotations

import json

import pytest

from gateway.config.providers import ProviderConfig
from gateway.errors import UpstreamAuthError, UpstreamProtocolError, UpstreamStatusError
from gateway.providers.openai import OpenAIAdapter
from tests.providers import golden

PUBLIC_MODEL = golden.PUBLIC_MODEL
UPSTREAM_MODEL = golden.UPSTREAM_MODEL
SECRET = "sk-upstream-secret-123"
BASE_URL = "http://10.0.0.7:8000/v1"


def adapter(api_key: str = SECRET) -> OpenAIAdapter:
    return OpenAIAdapter(ProviderConfig(name="acme", type="openai", base_url=BASE_URL, api_key=api_key))


GOLDEN = golden.Golden.of("openai", adapter)
FIXTURES = GOLDEN.folder


def run_stream(raw: bytes, client_usage: bool) -> golden.Outcome:
    return golden.run_stream(adapter(), raw, client_usage)


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
    assert len(GOLDEN.cases(".sse")) >= 10
    assert GOLDEN.orphans() == []


def test_crlf_fixture_really_uses_crlf():
    # A checkout that rewrites line endings would quietly turn this case into an LF case.
    assert b"\r\n\r\n" in (FIXTURES / "crlf_framing.sse").read_bytes()


def test_client_without_include_usage_never_gets_an_empty_choices_usage_chunk():
    body = run_stream((FIXTURES / "plain_text.sse").read_bytes(), client_usage=False).body
    chunks = [json.loads(e[6:]) for e in body.split(b"\n\n") if e.startswith(b"data: {")]
    assert all(c["choices"] for c in chunks)
    assert [c.get("usage") is not None for c in chunks] == [False, False, False, True]


def test_relayed_bytes_count_text_reasoning_and_tool_arguments():
    translator = run_stream((FIXTURES / "deepseek_keepalive_reasoning.sse").read_bytes(), False).translator
    assert translator.relayed_bytes == len("The user says hi.") + len("Hi!")
    translator = run_stream((FIXTURES / "tool_calls_split.sse").read_bytes(), False).translator
    names_and_args = ["get_weather", '{"city":', '"Paris"}', "get_time", "{}"]
    assert translator.relayed_bytes == sum(len(s) for s in names_and_args)


def test_relayed_cjk_text_weighs_a_token_a_character():
    delta = {"index": 0, "delta": {"content": "漢字"}}
    chunk = {"id": "c", "object": "chat.completion.chunk", "choices": [delta]}
    raw = b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"
    translator = run_stream(raw, False).translator
    assert translator.relayed_bytes == 8  # two tokens' worth (4 a token); bytes / 4 would be 1.5


def test_events_after_done_are_ignored():
    raw = (FIXTURES / "plain_text.sse").read_bytes() + b'data: {"choices":[]}\n\ndata: [DONE]\n\n'
    got = run_stream(raw, client_usage=True)
    assert got.error is None
    assert got.body.count(b"[DONE]") == 1


def test_deeply_nested_stream_event_is_a_protocol_error():
    got = run_stream(b"data: " + b"[" * 100_000 + b"\n\n", client_usage=False)
    assert isinstance(got.error, UpstreamProtocolError)
    assert got.body == b""


# Whole answers -------------------------------------------------------------------------------------

DEEPSEEK_BODY = {
    "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
    "object": "chat.completion",
    "created": 1705651092,
    "model": "chat-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi", "reasoning_content": "Greeting."},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1000,
        "completion_tokens": 300,
        "total_tokens": 1300,
        "prompt_cache_hit_tokens": 800,
        "prompt_cache_miss_tokens": 200,
        "completion_tokens_details": {"reasoning_tokens": 250},
    },
    "system_fingerprint": "fp_ds",
}


def test_parse_response_skips_deepseek_leading_blank_lines_and_rewrites_only_the_model():
    raw = b"\n\n\n" + json.dumps(DEEPSEEK_BODY).encode()
    completion = adapter().parse_response(raw, PUBLIC_MODEL)
    assert json.loads(completion.body) == {**DEEPSEEK_BODY, "model": PUBLIC_MODEL}
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (1000, 300)
    assert (usage.cached_tokens, usage.reasoning_tokens, usage.estimated) == (800, 250, False)


def test_parse_response_reads_openai_cached_tokens():
    body = dict(DEEPSEEK_BODY, usage={"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55})
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 32}
    assert adapter().parse_response(json.dumps(body).encode(), PUBLIC_MODEL).usage.cached_tokens == 32


def test_parse_response_without_usage_returns_none_for_an_estimate():
    body = {k: v for k, v in DEEPSEEK_BODY.items() if k != "usage"}
    assert adapter().parse_response(json.dumps(body).encode(), PUBLIC_MODEL).usage is None


@pytest.mark.parametrize("raw", [b"", b"<html>oops</html>", b"[1, 2]", b'"text"', b"{" * 3, b"[" * 100_000])
def test_parse_response_refuses_bodies_that_are_not_a_json_object(raw):
    with pytest.raises(UpstreamProtocolError) as info:
        adapter().parse_response(raw, PUBLIC_MODEL)
    assert (info.value.status, info.value.code) == (502, "bad_upstream_response")


def test_parse_response_turns_an_error_body_with_status_200_into_an_error():
    raw = b'{"error":{"message":"Provider returned error","code":502}}'
    with pytest.raises(UpstreamStatusError) as info:
        adapter().parse_response(raw, PUBLIC_MODEL)
    assert (info.value.status, info.value.message) == (502, "Provider returned error")


# Error bodies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, raw, expected",
    [
        (
            400,
            b'{"error":{"message":"Unsupported parameter: \'max_tokens\'","type":"invalid_request_error",'
            b'"param":"max_tokens","code":"unsupported_parameter"}}',
            (400, "invalid_request_error", "unsupported_parameter", "max_tokens"),
        ),
        (
            400,
            b'[{"error":{"code":400,"message":"Invalid JSON payload received.",'
            b'"status":"INVALID_ARGUMENT"}}]',
            (400, "invalid_request_error", None, None),
        ),
        (
            400,
            b'{"object":"error","message":"max_tokens is too large","type":"BadRequestError",'
            b'"param":null,"code":400}',
            (400, "BadRequestError", None, None),
        ),
        (
            500,
            b'{"error":{"message":"boom","type":"server_error"}}',
            (500, "server_error", "upstream_error", None),
        ),
        (
            503,
            b"<html><body>503 Service Unavailable</body></html>",
            (503, "server_error", "upstream_error", None),
        ),
        (418, b"", (418, "invalid_request_error", None, None)),
        (302, b"", (502, "server_error", "upstream_error", None)),
    ],
    ids=["openai", "gemini-array", "vllm-top-level", "500", "html-503", "empty-418", "odd-status"],
)
def test_parse_error_normalises_known_shapes(status, raw, expected):
    error = adapter().parse_error(status, raw, {})
    assert isinstance(error, UpstreamStatusError)
    assert (error.status, error.type, error.code, error.param) == expected
    assert set(error.to_error()) == {"message", "type", "param", "code"}


def test_parse_error_keeps_the_upstream_message():
    error = adapter().parse_error(400, b'[{"error":{"message":"Invalid JSON payload received."}}]', {})
    assert error.message == "Invalid JSON payload received."


def test_parse_error_of_html_names_the_status_not_the_page():
    error = adapter().parse_error(502, b"<html><title>502 Bad Gateway</title></html>", {})
    assert error.message == "Provider 'acme' answered with HTTP 502."
    assert "<html" not in error.message


@pytest.mark.parametrize("status", [401, 402, 403])
def test_upstream_credential_failures_become_502_without_upstream_text(status):
    raw = json.dumps(
        {"error": {"message": f"Incorrect API key provided: {SECRET}", "code": "invalid_api_key"}}
    )
    error = adapter().parse_error(status, raw.encode(), {})
    assert isinstance(error, UpstreamAuthError)
    assert (error.status, error.code) == (502, "upstream_auth_failed")
    assert "Incorrect" not in error.message and SECRET not in error.message


def test_upstream_insufficient_quota_is_the_operators_problem_not_the_clients():
    raw = (
        b'{"error":{"message":"You exceeded your current quota, please check your plan and billing '
        b'details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}'
    )
    error = adapter().parse_error(429, raw, {"retry-after": "20"})
    assert isinstance(error, UpstreamAuthError)
    assert (error.status, error.code) == (502, "upstream_auth_failed")


def test_rate_limit_keeps_retry_after_headers_and_drops_others():
    raw = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'
    headers = {"retry-after": "2", "retry-after-ms": "1500", "x-ratelimit-remaining-requests": "0"}
    error = adapter().parse_error(429, raw, headers)
    assert (error.status, error.type, error.code) == (429, "requests", "rate_limit_exceeded")
    assert error.headers == {"retry-after": "2", "retry-after-ms": "1500"}


def test_rate_limit_without_code_gets_rate_limit_exceeded():
    assert adapter().parse_error(429, b"", {}).code == "rate_limit_exceeded"


def test_overload_keeps_retry_after():
    assert adapter().parse_error(503, b"", {"retry-after": "30"}).headers == {"retry-after": "30"}


def test_error_messages_never_carry_the_provider_key_or_address():
    raw = json.dumps({"error": {"message": f"key {SECRET} was refused by {BASE_URL}/chat/completions"}})
    error = adapter().parse_error(400, raw.encode(), {})
    assert SECRET not in error.message and BASE_URL not in error.message
    assert error.message == "key [redacted] was refused by [redacted]/chat/completions"


def test_long_upstream_messages_are_cut():
    raw = json.dumps({"error": {"message": "x" * 10_000}}).encode()
    assert len(adapter().parse_error(400, raw, {}).message) == 2000


# Requests ------------------------------------------------------------------------------------------

CLIENT_BODY = {
    "model": PUBLIC_MODEL,
    "messages": [{"role": "user", "content": "Hi"}],
    "temperature": 0.7,
    "max_tokens": 128,
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "x_vendor_field": {"kept": True},
}


def test_build_request_swaps_the_model_and_keeps_every_other_field():
    req = adapter().build_request(dict(CLIENT_BODY, stream=False), UPSTREAM_MODEL, stream=False)
    assert json.loads(req.body) == dict(CLIENT_BODY, model=UPSTREAM_MODEL, stream=False)
    assert req.url == BASE_URL + "/chat/completions"
    assert (req.provider, req.stream) == ("acme", False)
    assert dict(req.headers)["Accept"] == "application/json"


def test_build_request_forces_include_usage_when_streaming_and_keeps_other_options():
    body = dict(CLIENT_BODY, stream=True, stream_options={"include_obfuscation": False})
    req = adapter().build_request(body, UPSTREAM_MODEL, stream=True)
    sent = json.loads(req.body)
    assert sent["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert dict(req.headers)["Accept"] == "text/event-stream"
    assert body["stream_options"] == {"include_obfuscation": False}, "the client's body is not mutated"


def test_build_request_removes_stream_options_when_not_streaming():
    body = dict(CLIENT_BODY, stream_options={"include_usage": True})
    assert "stream_options" not in json.loads(adapter().build_request(body, UPSTREAM_MODEL, False).body)


def test_build_request_sends_authorization_only_with_a_key():
    with_key = dict(adapter().build_request(CLIENT_BODY, UPSTREAM_MODEL, False).headers)
    assert with_key["Authorization"] == f"Bearer {SECRET}"
    without = dict(adapter(api_key="").build_request(CLIENT_BODY, UPSTREAM_MODEL, False).headers)
    assert "Authorization" not in without
    assert SECRET not in adapter().build_request(CLIENT_BODY, UPSTREAM_MODEL, False).url

"""The Anthropic Messages adapter with plain data: golden requests, answers and streams, and errors.

The golden-file convention is in golden.py; the cases are in fixtures/anthropic/.
"""

from __future__ import annotations

import json

import pytest

from gateway.config.providers import ModelConfig, ProviderConfig
from gateway.errors import InvalidRequestError, UpstreamAuthError, UpstreamStatusError
from gateway.providers.anthropic.adapter import AnthropicAdapter
from gateway.providers.base import Usage
from gateway.providers.events import Event
from tests.providers import golden

SECRET = "sk-ant-secret-123"
BASE_URL = "http://10.0.0.8:9000/v1"


def adapter(**options) -> AnthropicAdapter:
    provider = ProviderConfig(
        name="acme",
        type="anthropic",
        base_url=BASE_URL,
        api_key=SECRET,
        auth="x-api-key",
        api_version="2023-06-01",
        models=(ModelConfig(name="chat-model", upstream_id="chat-model"),),
        **options,
    )
    return golden.pin(AnthropicAdapter(provider))


GOLDEN = golden.Golden.of("anthropic", adapter)


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


def test_request_goes_to_messages_with_key_and_version_headers():
    req = GOLDEN.check_request("multi_turn_tools_images")
    assert req.url == BASE_URL + "/messages"
    headers = dict(req.headers)
    assert headers["x-api-key"] == SECRET and headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in headers and SECRET not in req.url
    assert (req.stream, headers["Accept"]) == (True, "text/event-stream")


def test_max_tokens_falls_back_to_the_model_then_the_provider_default():
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    assert json.loads(adapter().build_request(body, "chat-model", False).body)["max_tokens"] == 4096
    assert (
        json.loads(adapter(max_tokens=777).build_request(body, "chat-model", False).body)["max_tokens"] == 777
    )
    capped = adapter()
    capped.provider = ProviderConfig(
        name="acme",
        type="anthropic",
        base_url=BASE_URL,
        models=(ModelConfig(name="m", upstream_id="chat-model", max_output_tokens=64000),),
    )
    assert json.loads(capped.build_request(body, "chat-model", False).body)["max_tokens"] == 64000


@pytest.mark.parametrize(
    "body, param",
    [
        ({"n": 2}, "n"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:a"}}]}
                ]
            },
            "messages[0].content[0].image_url",
        ),
    ],
    ids=["n", "response_format", "audio", "arguments-not-object", "bad-data-url"],
)
def test_what_anthropic_cannot_express_is_a_400_naming_the_param(body, param):
    body = {"messages": [{"role": "user", "content": "Hi"}], **body}
    with pytest.raises(InvalidRequestError) as info:
        adapter().build_request(body, "chat-model", False)
    assert (info.value.status, info.value.param) == (400, param)


@pytest.mark.parametrize(
    "status, raw",
    [
        (401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}),
        (402, {"type": "error", "error": {"type": "billing_error", "message": "pay up"}}),
        (403, {"type": "error", "error": {"type": "permission_error", "message": "no"}}),
        (
            400,
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "Your credit balance is too low"},
            },
        ),
    ],
    ids=["401", "402", "403", "400-credit"],
)
def test_credential_and_account_failures_are_502_naming_the_provider(status, raw):
    error = adapter().parse_error(status, json.dumps(raw).encode(), {})
    assert isinstance(error, UpstreamAuthError)
    assert (error.status, error.code) == (502, "upstream_auth_failed")
    assert "'acme'" in error.message and "x-api-key" not in error.message


@pytest.mark.parametrize(
    "status, kind, expected",
    [
        (400, "invalid_request_error", (400, "invalid_request_error", None)),
        (404, "not_found_error", (404, "invalid_request_error", "not_found")),
        (429, "rate_limit_error", (429, "invalid_request_error", "rate_limit_exceeded")),
        (500, "api_error", (500, "server_error", "upstream_error")),
        (529, "overloaded_error", (503, "server_error", "upstream_overloaded")),
    ],
)
def test_errors_keep_message_and_map_status(status, kind, expected):
    raw = {
        "type": "error",
        "error": {"type": kind, "message": f"{kind} at {BASE_URL}"},
        "request_id": "req_1",
    }
    error = adapter().parse_error(status, json.dumps(raw).encode(), {"retry-after": "3"})
    assert isinstance(error, UpstreamStatusError)
    assert (error.status, error.type, error.code) == expected
    assert error.message == f"{kind} at [redacted]"
    assert set(error.to_error()) == {"message", "type", "param", "code"}
    if status in (429, 529):
        assert error.headers == {"retry-after": "3"}


def test_html_error_page_names_the_status():
    error = adapter().parse_error(502, b"<html>bad gateway</html>", {})
    assert (error.status, error.message) == (502, "Provider 'acme' answered with HTTP 502.")


@pytest.mark.parametrize(
    "effort, max_tokens, budget",
    [
        ("low", None, 1024),
        ("medium", None, 2048),
        ("high", None, 4095),
        ("high", 8000, 4096),
        ("none", None, None),
    ],
)
def test_reasoning_effort_becomes_a_thinking_budget_below_max_tokens(effort, max_tokens, budget):
    body = {"messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": effort, "temperature": 0.2}
    if max_tokens:
        body["max_tokens"] = max_tokens
    sent = json.loads(adapter().build_request(body, "chat-model", False).body)
    if budget is None:
        assert "thinking" not in sent and sent["temperature"] == 0.2
    else:
        # Thinking takes no temperature change: it is dropped, not refused by Anthropic.
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert "temperature" not in sent and budget < sent["max_tokens"]


def test_an_explicit_thinking_field_wins_over_reasoning_effort():
    thinking = {"type": "enabled", "budget_tokens": 3000}
    body = {"messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "low", "thinking": thinking}
    assert json.loads(adapter().build_request(body, "chat-model", False).body)["thinking"] == thinking


@pytest.mark.parametrize(
    "body, param",
    [
        ({"reasoning_effort": "low", "max_tokens": 1024}, "max_tokens"),
        ({"reasoning_effort": "max"}, "reasoning_effort"),
    ],
)
def test_reasoning_effort_that_cannot_be_met_is_a_400(body, param):
    with pytest.raises(InvalidRequestError) as info:
        adapter().build_request(
            {"messages": [{"role": "user", "content": "Hi"}], **body}, "chat-model", False
        )
    assert info.value.param == param


def test_a_chat_stream_cut_before_message_delta_bills_the_text_relayed():
    translator = adapter().translator("acme:chat-model", "chat-model", False)
    start = {
        "type": "message_start",
        "message": {"id": "m", "usage": {"input_tokens": 20, "output_tokens": 1}},
    }
    translator.feed(Event(data=json.dumps(start).encode(), event="message_start"))
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x" * 400}}
    translator.feed(Event(data=json.dumps(delta).encode(), event="content_block_delta"))
    assert translator.usage == Usage(prompt_tokens=20, completion_tokens=100, estimated=True)
    end = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 90}}
    translator.feed(Event(data=json.dumps(end).encode(), event="message_delta"))
    assert translator.usage == Usage(prompt_tokens=20, completion_tokens=90)


@pytest.mark.parametrize(
    "upstream_id, option, adaptive",
    [
        ("claude-opus-4-7", None, True),
        ("claude-sonnet-4-6", None, True),
        ("claude-sonnet-5", None, True),
        ("claude-sonnet-4-5-20250929", None, False),
        ("claude-3-7-sonnet-20250219", None, False),
        ("claude-sonnet-4-20250514", None, False),
        ("my-private-model", "adaptive", True),
        ("claude-opus-4-7", "budget", False),
    ],
)
def test_reasoning_effort_on_an_adaptive_model_is_an_effort_not_a_budget(upstream_id, option, adaptive):
    model = ModelConfig(name="m", upstream_id=upstream_id, thinking=option)
    provider = ProviderConfig(
        name="acme", type="anthropic", base_url=BASE_URL, api_key=SECRET, models=(model,)
    )
    body = {"messages": [{"role": "user", "content": "Hi"}], "reasoning_effort": "medium", "top_p": 0.9}
    sent = json.loads(AnthropicAdapter(provider).build_request(body, upstream_id, False).body)
    if adaptive:
        assert (sent["thinking"], sent["output_config"]) == ({"type": "adaptive"}, {"effort": "medium"})
    else:
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
        assert "output_config" not in sent
    assert "top_p" not in sent


@pytest.mark.parametrize(
    "upstream_id, both", [("claude-opus-4-7", False), ("claude-sonnet-4-20250514", True)]
)
def test_temperature_and_top_p_together_only_reach_models_that_take_both(upstream_id, both):
    model = ModelConfig(name="m", upstream_id=upstream_id)
    provider = ProviderConfig(
        name="acme", type="anthropic", base_url=BASE_URL, api_key=SECRET, models=(model,)
    )
    body = {"messages": [{"role": "user", "content": "Hi"}], "temperature": 0.3, "top_p": 0.9}
    sent = json.loads(AnthropicAdapter(provider).build_request(body, upstream_id, False).body)
    assert sent["temperature"] == 0.3
    assert ("top_p" in sent) is both

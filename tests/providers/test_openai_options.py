"""OpenAI-compatible upstreams as configuration: each provider option, and the Azure adapter."""

from __future__ import annotations

import json

import pytest

from gateway.config.providers import ProviderConfig
from gateway.providers.azure import AzureAdapter
from gateway.providers.base import COMPLETIONS, EMBEDDINGS
from gateway.providers.openai import OpenAIAdapter
from gateway.upstream.sse import Decoder

SECRET = "sk-compat-secret"


def adapter(kind: type[OpenAIAdapter] = OpenAIAdapter, **options) -> OpenAIAdapter:
    options.setdefault("base_url", "http://10.0.0.7:8000/v1")
    return kind(ProviderConfig(name="acme", type="openai", api_key=SECRET, **options))


def sent(a: OpenAIAdapter, body: dict, stream: bool = False, operation: str = "chat") -> dict:
    return json.loads(a.build_request(body, "up-model", stream, operation).body)


BODY = {"model": "acme:m", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize(
    "auth, header",
    [("bearer", ("Authorization", f"Bearer {SECRET}")), ("api-key", ("api-key", SECRET)), ("none", None)],
)
def test_auth_styles(auth, header):
    headers = dict(adapter(auth=auth, headers=(("X-Title", "gw"),)).build_request(BODY, "m", False).headers)
    assert headers["X-Title"] == "gw"
    if header is None:
        assert SECRET not in json.dumps(headers)
    else:
        assert headers[header[0]] == header[1]


def test_drop_and_rename_params():
    a = adapter(drop_params=("logit_bias", "user"), rename_params=(("max_completion_tokens", "max_tokens"),))
    body = dict(BODY, logit_bias={"1": 2}, user="u", max_completion_tokens=50, temperature=0.2)
    assert sent(a, body) == {
        "model": "up-model",
        "messages": BODY["messages"],
        "max_tokens": 50,
        "temperature": 0.2,
    }


def test_rename_keeps_an_explicit_target_value():
    a = adapter(rename_params=(("max_completion_tokens", "max_tokens"),))
    assert sent(a, dict(BODY, max_completion_tokens=50, max_tokens=10))["max_tokens"] == 10


def test_developer_messages_become_system_only_when_asked():
    body = dict(BODY, messages=[{"role": "developer", "content": "Be brief."}, *BODY["messages"]])
    assert sent(adapter(developer_role="system"), body)["messages"][0]["role"] == "system"
    assert sent(adapter(), body)["messages"][0]["role"] == "developer"
    assert body["messages"][0]["role"] == "developer", "the client's body is not mutated"


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_goes_back_only_on_tool_call_turns_under_the_upstreams_name(field):
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "reasoning": "old thought"},
        {"role": "assistant", "content": None, "reasoning_content": "tool thought", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ]
    out = sent(adapter(reasoning_field=field), dict(BODY, messages=messages))["messages"]
    assert "reasoning" not in out[1] and "reasoning_content" not in out[1]
    assert out[2][field] == "tool thought"
    assert ({"reasoning", "reasoning_content"} - {field}).isdisjoint(out[2])


def test_an_empty_reasoning_on_a_tool_call_turn_still_goes_back():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": None, "reasoning_content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ]
    out = sent(adapter(), dict(BODY, messages=messages))["messages"]
    assert out[1]["reasoning_content"] == ""


def test_reasoning_field_none_never_sends_reasoning():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [{"role": "assistant", "content": None, "reasoning_content": "t", "tool_calls": [call]}]
    out = sent(adapter(reasoning_field="none"), dict(BODY, messages=messages))["messages"]
    assert out == [{"role": "assistant", "content": None, "tool_calls": [call]}]


def test_upstream_reasoning_is_renamed_for_clients_whole_and_streamed():
    a = adapter(reasoning_field="reasoning")
    whole = {
        "id": "x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi", "reasoning": "Think."}}],
    }
    message = json.loads(a.parse_response(json.dumps(whole).encode(), "acme:m").body)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Hi", "reasoning_content": "Think."}
    translator = a.translator("acme:m", "up-model", True)
    raw = b'data: {"id":"x","model":"up-model","choices":[{"index":0,"delta":{"reasoning":"Th"}}]}\n\n'
    (out,) = [b for e in Decoder().feed(raw) for b in translator.feed(e)]
    assert json.loads(out[6:])["choices"][0]["delta"] == {"reasoning_content": "Th"}
    assert json.loads(out[6:])["model"] == "acme:m"


def test_stream_options_only_when_streaming_and_only_when_enabled():
    assert sent(adapter(), dict(BODY, stream=True), stream=True)["stream_options"] == {"include_usage": True}
    assert "stream_options" not in sent(adapter(), dict(BODY, stream_options={"include_usage": True}))
    assert "stream_options" not in sent(adapter(stream_usage=False), dict(BODY, stream=True), stream=True)


def test_paths_per_operation():
    a = adapter(paths=(("chat", "/api/chat"),))
    assert a.build_request(BODY, "m", False).url == "http://10.0.0.7:8000/v1/api/chat"
    assert a.build_request({"model": "x", "prompt": "p"}, "m", False, COMPLETIONS).url.endswith(
        "/v1/completions"
    )
    assert a.build_request({"model": "x", "input": "p"}, "m", False, EMBEDDINGS).url.endswith(
        "/v1/embeddings"
    )


def test_embeddings_never_forward_encoding_format():
    body = {"model": "acme:e", "input": "hi", "encoding_format": "base64", "dimensions": 8}
    assert sent(adapter(), body, operation=EMBEDDINGS) == {
        "model": "up-model",
        "input": "hi",
        "dimensions": 8,
    }


def test_azure_deployment_url_api_version_and_key():
    a = adapter(
        AzureAdapter, base_url="https://res.openai.azure.com", auth="api-key", api_version="2024-10-21"
    )
    req = a.build_request(dict(BODY, stream=True), "my deploy", True)
    assert (
        req.url
        == "https://res.openai.azure.com/openai/deployments/my%20deploy/chat/completions?api-version=2024-10-21"
    )
    assert dict(req.headers)["api-key"] == SECRET and "Authorization" not in dict(req.headers)
    assert json.loads(req.body)["stream_options"] == {"include_usage": True}
    emb = a.build_request({"model": "x", "input": "p"}, "emb", False, EMBEDDINGS)
    assert emb.url == "https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"


def test_azure_content_filter_error_keeps_code_and_param():
    raw = {
        "error": {
            "message": "The response was filtered",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation"},
        }
    }
    a = adapter(AzureAdapter, base_url="https://res.openai.azure.com", auth="api-key", api_version="v")
    error = a.parse_error(400, json.dumps(raw).encode(), {})
    assert (error.status, error.type, error.code, error.param) == (
        400,
        "invalid_request_error",
        "content_filter",
        "prompt",
    )


def test_deepseek_402_is_the_operators_problem():
    raw = b'{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,'
    raw += b'"code":"invalid_request_error"}}'
    error = adapter().parse_error(402, raw, {})
    assert (error.status, error.code) == (502, "upstream_auth_failed")
    assert "'acme'" in error.message

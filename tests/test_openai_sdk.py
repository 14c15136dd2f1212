"""The official openai SDK as the client of a live gateway: what real users' code will see."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import openai
import pytest

from tests.fakes.gateway_server import GatewayServer, run_gateway, store_url
from tests.fakes.upstream import MID_STREAM_ERROR, FakeUpstream


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(upstream: FakeUpstream, tmp_path_factory) -> Iterator[GatewayServer]:
    workdir = tmp_path_factory.mktemp("sdk")
    with store_url("sqlite", workdir) as url, run_gateway(workdir, url, upstream.url) as server:
        yield server


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    # No retries: a retried error would only make the tests slower and hide a second upstream call.
    with openai.OpenAI(base_url=gateway.api_base, api_key=gateway.key, max_retries=0, timeout=20) as sdk:
        yield sdk


def marker() -> str:
    return "m" + uuid.uuid4().hex[:12]


def user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


def test_plain_call_to_the_mock_provider(client):
    resp = client.chat.completions.create(model="mock:echo", messages=user("Say hi"))
    assert resp.object == "chat.completion"
    assert resp.model == "mock:echo"
    assert resp.choices[0].message.content == "Say hi"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.completion_tokens == 2
    assert resp._request_id.startswith("req_")


def test_plain_call_through_the_fake_upstream(client, upstream):
    tag = marker()
    resp = client.chat.completions.create(model="fake:chat", messages=user(f"{tag} hello there"))
    ex = upstream.find(tag)
    assert resp.model == "fake:chat"
    assert resp.choices[0].message.content == f"{tag} hello there"
    assert resp.usage.prompt_tokens == ex.reported_usage["prompt_tokens"]
    assert resp.usage.completion_tokens == ex.reported_usage["completion_tokens"]
    assert ex.body["model"] == "chat" and "stream_options" not in ex.body


@pytest.mark.parametrize("model", ["fake:chat", "fake:keepalive", "mock:echo"])
def test_streamed_call_joins_to_the_answer_with_usage_on_the_last_chunk(client, model):
    text = f"{marker()} the quick brown fox"
    chunks = list(client.chat.completions.create(model=model, messages=user(text), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert {c.model for c in chunks} == {model}
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(text.split())
    assert all(c.usage is None for c in chunks[:-1])


def test_include_usage_gives_openais_usage_chunk(client, upstream):
    tag = marker()
    stream = client.chat.completions.create(
        model="fake:chat",
        messages=user(f"{tag} a b c"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    reported = upstream.find(tag).reported_usage
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == reported["total_tokens"]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == f"{tag} a b c"


def test_bad_key_is_authentication_error(gateway):
    with openai.OpenAI(base_url=gateway.api_base, api_key="sk-" + "x" * 48, max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as info:
            bad.chat.completions.create(model="mock:echo", messages=user("hi"))
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.type == "invalid_request_error"
    assert info.value.request_id.startswith("req_")


def test_unknown_model_is_not_found_error(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="fake:no-such-model", messages=user("hi"))
    assert info.value.code == "model_not_found"
    assert info.value.param == "model"


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_500_is_internal_server_error(client, upstream, stream):
    tag = marker()
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="fake:status-500", messages=user(tag), stream=stream)
    assert info.value.status_code == 500
    assert info.value.code == "upstream_error"
    assert len(upstream.matching(tag)) == 1


def test_upstream_429_is_rate_limit_error(client):
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="fake:status-429", messages=user(marker()))
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers["retry-after"] == "7"


def test_mid_stream_upstream_error_raises_api_error_while_iterating(client):
    stream = client.chat.completions.create(model="fake:error-event", messages=user(marker()), stream=True)
    seen = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert not isinstance(info.value, openai.APIStatusError), "the status was 200: the error is in-band"
    assert info.value.message == MID_STREAM_ERROR["message"]
    assert info.value.code == MID_STREAM_ERROR["code"]
    assert "".join(seen) == "partial answer"


def test_models_list_has_provider_prefixed_ids(client):
    ids = {model.id for model in client.models.list()}
    assert {"mock:echo", "fake:chat", "fake:slow"} <= ids


def test_insufficient_quota_is_an_error_the_sdk_does_not_retry(gateway, upstream):
    email = f"{marker()}@example.com"
    gateway.cli("users", "create", email)  # balance 0
    poor_key = gateway.create_key("--user", email)
    tag = marker()
    # The SDK's default retries are on: x-should-retry: false must stop them.
    with openai.OpenAI(base_url=gateway.api_base, api_key=poor_key, max_retries=2, timeout=20) as sdk:
        with pytest.raises(openai.RateLimitError) as info:
            sdk.chat.completions.with_raw_response.create(model="fake:chat", messages=user(tag))
    assert info.value.code == "insufficient_quota"
    assert info.value.type == "insufficient_quota"
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.response.request.headers.get("x-stainless-retry-count") == "0"
    assert upstream.matching(tag) == []

"""One openai-SDK script against every provider type, through the live gateway under gunicorn.

Each fake upstream speaks its provider's real wire format on 127.0.0.1 (tests/fakes/): OpenAI,
DeepSeek (blank lines, keep-alives, reasoning_content, cache-hit usage), Azure (deployment URL,
api-version, api-key, empty-choices filter chunk), Anthropic (Messages events) and Gemini
(generateContent, CRLF SSE). The script (tests/fakes/script.py) is the same for all: a plain
question, the same streamed, and a tool call answered with a tool result. The answers must be
equivalent, and each request's one usage row must bill what the upstream reported.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest
from sqlalchemy import create_engine, select

from gateway.store.tables import usage_records
from tests.fakes import anthropic_upstream, gemini_upstream, script
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gateway_server import GatewayServer, run_gateway, store_url
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.upstream import SECRET, FakeUpstream

INPUT, OUTPUT, CACHED = 1.0, 2.0, 0.5  # USD per million tokens = micro-USD per token
MODELS = {
    "openai": "openai:script-gpt",
    "deepseek": "deepseek:deepseek-chat",
    "azure": "azure:gpt-4o",
    "anthropic": "anthropic:claude",
    "gemini": "gemini:flash",
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": script.TOOL_NAME,
            "description": "The weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@dataclass
class Upstreams:
    openai: FakeUpstream
    anthropic: FakeAnthropic
    gemini: FakeGemini

    def find(self, provider: str, marker: str):
        fake = {"anthropic": self.anthropic, "gemini": self.gemini}.get(provider, self.openai)
        return fake.find(marker)


def _prices(section: str) -> str:
    return f"[{section}]\ninput_price = {INPUT}\noutput_price = {OUTPUT}\ncached_input_price = {CACHED}\n"


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    with FakeUpstream() as oai, FakeAnthropic() as ant, FakeGemini() as gem:
        yield Upstreams(oai, ant, gem)


@pytest.fixture(scope="module")
def gateway(upstreams: Upstreams, tmp_path_factory) -> Iterator[GatewayServer]:
    root = upstreams.openai.url.removesuffix("/v1")
    toml = f"""
[providers.openai]
base_url = "{upstreams.openai.url}"
api_key = "{SECRET}"
{_prices("providers.openai.models.script-gpt")}
[providers.deepseek]
base_url = "{root}"
api_key = "{SECRET}"
rename_params = {{ max_completion_tokens = "max_tokens" }}
{_prices("providers.deepseek.models.deepseek-chat")}
[providers.azure]
type = "azure"
base_url = "{root}"
api_key = "{SECRET}"
api_version = "2024-10-21"
{_prices("providers.azure.models.gpt-4o")}upstream_id = "script-deployment"

[providers.anthropic]
type = "anthropic"
base_url = "{upstreams.anthropic.url}"
api_key = "{anthropic_upstream.SECRET}"
max_tokens = 1024
{_prices("providers.anthropic.models.claude")}upstream_id = "claude-x"

[providers.gemini]
type = "gemini"
base_url = "{upstreams.gemini.url}"
api_key = "{gemini_upstream.SECRET}"
{_prices("providers.gemini.models.flash")}upstream_id = "gemini-x"
{_prices("providers.gemini.models.embed")}upstream_id = "embedding-x"

[providers.gemini-badkey]
type = "gemini"
base_url = "{upstreams.gemini.url}"
api_key = "wrong"
[providers.gemini-badkey.models.flash]

[providers.anthropic-badkey]
type = "anthropic"
base_url = "{upstreams.anthropic.url}"
api_key = "wrong"
[providers.anthropic-badkey.models.claude]

[aliases]
claude = "anthropic:claude"
"""
    workdir = tmp_path_factory.mktemp("providers")
    with store_url("sqlite", workdir) as url, run_gateway(workdir, url, None, extra_toml=toml) as server:
        yield server


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.api_base, api_key=gateway.key, max_retries=0, timeout=20) as sdk:
        yield sdk


def usage_row(gateway: GatewayServer, request_id: str, timeout: float = 5.0):
    """Return the request's usage row, waiting for it: the SDK stops reading at the upstream's [DONE],
    which the gateway relays the moment it arrives, a few milliseconds before it settles."""
    engine = create_engine(gateway.database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(usage_records).where(usage_records.c.request_id == request_id)
                ).all()
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.02)
    finally:
        engine.dispose()
    assert len(rows) == 1, rows
    return rows[0]


def assert_billed(gateway: GatewayServer, request_id: str, billed: script.Billed) -> None:
    row = usage_row(gateway, request_id)
    assert (row.status, row.outcome, row.estimated) == (200, "ok", False)
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (
        billed.prompt_tokens,
        billed.completion_tokens,
        billed.cached_tokens,
    )
    cost = (
        (billed.prompt_tokens - billed.cached_tokens) * INPUT
        + billed.cached_tokens * CACHED
        + billed.completion_tokens * OUTPUT
    )
    assert row.cost_micros == math.ceil(cost)


def question() -> tuple[str, str]:
    tag = "m" + uuid.uuid4().hex[:12]
    return tag, f"{tag} what is the weather like"


@pytest.mark.parametrize("provider", list(MODELS))
def test_plain_answer_is_the_same_and_billed_as_reported(client, gateway, upstreams, provider):
    tag, text = question()
    raw = client.chat.completions.with_raw_response.create(
        model=MODELS[provider],
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}],
        max_completion_tokens=200,
    )
    resp = raw.parse()
    assert resp.model == MODELS[provider]
    assert resp.choices[0].message.content == text
    assert resp.choices[0].finish_reason == "stop"
    billed = upstreams.find(provider, tag).billed
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (
        billed.prompt_tokens,
        billed.completion_tokens,
    )
    assert_billed(gateway, raw.headers["x-request-id"], billed)


@pytest.mark.parametrize("include_usage", [False, True], ids=["usage-on-final", "include-usage"])
@pytest.mark.parametrize("provider", list(MODELS))
def test_streamed_answer_is_the_same_and_billed_as_reported(
    client, gateway, upstreams, provider, include_usage
):
    tag, text = question()
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    with client.chat.completions.with_streaming_response.create(
        model=MODELS[provider], messages=[{"role": "user", "content": text}], stream=True, **extra
    ) as raw:
        request_id = raw.headers["x-request-id"]
        chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert {c.model for c in chunks} == {MODELS[provider]}
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["stop"]
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [chunks[-1]], "exactly one usage, on the last chunk"
    assert (chunks[-1].choices == []) is include_usage
    billed = upstreams.find(provider, tag).billed
    assert chunks[-1].usage.prompt_tokens == billed.prompt_tokens
    assert chunks[-1].usage.completion_tokens == billed.completion_tokens
    assert_billed(gateway, request_id, billed)


def _tool_turns(client, provider: str, text: str, stream: bool):
    messages = [{"role": "user", "content": text}]
    kwargs = {"model": MODELS[provider], "messages": messages, "tools": TOOLS}
    if stream:
        calls: dict[int, dict] = {}
        finish = None
        for chunk in client.chat.completions.create(stream=True, **kwargs):
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for delta in choice.delta.tool_calls or ():
                    call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] += delta.id or ""
                    call["name"] += (delta.function and delta.function.name) or ""
                    call["arguments"] += (delta.function and delta.function.arguments) or ""
        (call,) = calls.values()
    else:
        resp = client.chat.completions.create(**kwargs)
        finish = resp.choices[0].finish_reason
        (tool_call,) = resp.choices[0].message.tool_calls
        call = {
            "id": tool_call.id,
            "name": tool_call.function.name,
            "arguments": tool_call.function.arguments,
        }
    return finish, call


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("provider", list(MODELS))
def test_tool_call_and_tool_result_round_trip(client, gateway, upstreams, provider, stream):
    tag, text = question()
    finish, call = _tool_turns(client, provider, text, stream)
    assert finish == "tool_calls"
    assert call["name"] == script.TOOL_NAME
    assert json.loads(call["arguments"]) == json.loads(script.TOOL_ARGUMENTS)
    assert call["id"]
    result = f"sunny {tag}"
    raw = client.chat.completions.with_raw_response.create(
        model=MODELS[provider],
        tools=TOOLS,
        messages=[
            {"role": "user", "content": text},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call["id"], "content": result},
        ],
    )
    resp = raw.parse()
    assert resp.choices[0].message.content == f"The tool said {result}"
    exchanges = [ex for ex in _all(upstreams, provider) if tag.encode() in ex.raw]
    assert len(exchanges) == 2
    assert_billed(gateway, raw.headers["x-request-id"], exchanges[-1].billed)


def _all(upstreams: Upstreams, provider: str):
    fake = {"anthropic": upstreams.anthropic, "gemini": upstreams.gemini}.get(provider, upstreams.openai)
    return list(fake.exchanges)


def test_gemini_thought_signature_goes_back_with_its_function_call(client, upstreams):
    tag, text = question()
    _, call = _tool_turns(client, "gemini", text, stream=False)
    client.chat.completions.create(
        model=MODELS["gemini"],
        messages=[
            {"role": "user", "content": text},
            {
                "role": "assistant",
                "tool_calls": [{"id": call["id"], "type": "function", "function": call_fn(call)}],
            },
            {"role": "tool", "tool_call_id": call["id"], "content": "rain"},
        ],
    )
    second = [ex for ex in upstreams.gemini.exchanges if tag.encode() in ex.raw][-1]
    part = second.body["contents"][1]["parts"][0]
    assert part["thoughtSignature"] == gemini_upstream.SIGNATURE


def call_fn(call: dict) -> dict:
    return {"name": call["name"], "arguments": call["arguments"]}


def test_deepseek_reasoning_comes_through_as_reasoning_content(client):
    resp = client.chat.completions.create(
        model=MODELS["deepseek"], messages=[{"role": "user", "content": question()[1]}]
    )
    assert resp.choices[0].message.model_extra["reasoning_content"] == "Thinking."


def test_deepseek_and_azure_requests_look_like_theirs(client, upstreams):
    tag, text = question()
    client.chat.completions.create(
        model=MODELS["deepseek"], messages=[{"role": "user", "content": text}], max_completion_tokens=99
    )
    ex = upstreams.openai.find(tag)
    assert (
        ex.path == "/chat/completions"
        and ex.body["max_tokens"] == 99
        and "max_completion_tokens" not in ex.body
    )
    tag, text = question()
    client.chat.completions.create(model=MODELS["azure"], messages=[{"role": "user", "content": text}])
    ex = upstreams.openai.find(tag)
    assert ex.path == "/openai/deployments/script-deployment/chat/completions?api-version=2024-10-21"
    assert ex.headers["api-key"] == SECRET and "authorization" not in ex.headers


@pytest.mark.parametrize("model", ["gemini-badkey:flash", "anthropic-badkey:claude"])
def test_a_bad_provider_key_is_a_502_naming_the_provider_not_the_clients_401(client, model):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502
    assert info.value.code == "upstream_auth_failed"
    assert model.split(":")[0] in info.value.message


def test_an_alias_reaches_its_model(client):
    tag, text = question()
    resp = client.chat.completions.create(model="claude", messages=[{"role": "user", "content": text}])
    assert resp.choices[0].message.content == text
    assert resp.model == "anthropic:claude"


@pytest.mark.parametrize("model", ["gemini:embed", "openai:script-gpt"])
def test_embeddings_through_the_sdk_are_billed_on_input(client, gateway, model):
    raw = client.embeddings.with_raw_response.create(model=model, input=["hello world", "bye"])
    resp = raw.parse()
    assert len(resp.data) == 2 and all(len(d.embedding) >= 1 for d in resp.data)
    assert resp.data[0].embedding[:2] == [0.5, -0.25], "the SDK decoded the base64 it asked for"
    row = usage_row(gateway, raw.headers["x-request-id"])
    assert row.status == 200 and row.completion_tokens == 0
    # OpenAI reports tokens (3); Gemini reports none, so the request is estimated and marked so.
    assert (row.prompt_tokens, row.estimated) == (
        (3, False) if model.startswith("openai") else (row.prompt_tokens, True)
    )
    assert row.prompt_tokens > 0 and row.cost_micros == math.ceil(row.prompt_tokens * INPUT)

"""LangChain's ChatAnthropic against a live gateway: whole, streamed and a tool round trip.

LangChain builds its own Messages requests (its defaults, its headers, its tool schema) on top of the
anthropic SDK, so it is a client of its own. It runs on an Anthropic upstream (relayed natively) and
an OpenAI one (translated); every call must leave exactly one usage row with the upstream's counts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from sqlalchemy import create_engine, select

from gateway.store.tables import api_keys, holds, usage_records
from tests.fakes import anthropic_upstream, script
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gateway_server import GatewayServer, run_gateway, store_url
from tests.fakes.upstream import SECRET, FakeUpstream

MODELS = {"anthropic": "anthropic:claude", "openai": "openai:script-gpt"}


@tool(script.TOOL_NAME)
def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict]:
    with FakeAnthropic() as ant, FakeUpstream() as oai:
        yield {"anthropic": ant, "openai": oai}


@pytest.fixture(scope="module")
def gateway(upstreams, tmp_path_factory) -> Iterator[GatewayServer]:
    toml = f"""
[providers.anthropic]
type = "anthropic"
base_url = "{upstreams["anthropic"].url}"
api_key = "{anthropic_upstream.SECRET}"
[providers.anthropic.models.claude]
input_price = 1.0
output_price = 2.0
upstream_id = "claude-x"
[providers.openai]
base_url = "{upstreams["openai"].url}"
api_key = "{SECRET}"
[providers.openai.models.script-gpt]
input_price = 1.0
output_price = 2.0
upstream_id = "script-gpt"
"""
    workdir = tmp_path_factory.mktemp("langchain")
    with store_url("sqlite", workdir) as url, run_gateway(workdir, url, None, extra_toml=toml) as server:
        yield server


def chat(gateway: GatewayServer, provider: str, key: str, streaming: bool = False) -> ChatAnthropic:
    return ChatAnthropic(
        model=MODELS[provider],
        base_url=gateway.base_url + "/api",
        api_key=key,
        max_tokens=200,
        max_retries=0,
        streaming=streaming,
        timeout=20,
    )


def rows_of_key(gateway: GatewayServer, name: str, expected: int, timeout: float = 5.0) -> list:
    """Return the usage rows of the key called NAME once EXPECTED are there and no hold is left."""
    engine = create_engine(gateway.database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                key_id = conn.execute(select(api_keys.c.id).where(api_keys.c.name == name)).scalar_one()
                rows = conn.execute(
                    select(usage_records).where(usage_records.c.key_id == key_id).order_by(usage_records.c.id)
                ).all()
                left = conn.execute(select(holds.c.id).where(holds.c.key_id == key_id)).all()
            if (len(rows) >= expected and not left) or time.monotonic() > deadline:
                assert not left, "a hold outlived its request"
                return rows
            time.sleep(0.02)
    finally:
        engine.dispose()


def fresh_key(gateway: GatewayServer) -> tuple[str, str]:
    name = "lc-" + uuid.uuid4().hex[:10]
    return name, gateway.create_key("--name", name)


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
def test_a_plain_answer_reads_back_and_is_billed_once(gateway, upstreams, provider, streaming):
    name, key = fresh_key(gateway)
    tag = "lc" + uuid.uuid4().hex[:10]
    text = f"{tag} what is the weather like"
    answer = chat(gateway, provider, key, streaming).invoke([HumanMessage(text)])
    assert answer.text == text
    billed = upstreams[provider].find(tag).billed
    assert answer.usage_metadata["output_tokens"] == billed.completion_tokens
    (row,) = rows_of_key(gateway, name, 1)
    assert (row.status, row.outcome, row.estimated, row.stream) == (200, "ok", False, streaming)
    assert (row.prompt_tokens, row.completion_tokens) == (billed.prompt_tokens, billed.completion_tokens)
    assert row.model == MODELS[provider]


@pytest.mark.parametrize("streaming", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
def test_a_tool_round_trip_through_bind_tools(gateway, provider, streaming):
    name, key = fresh_key(gateway)
    model = chat(gateway, provider, key, streaming).bind_tools([get_weather])
    history = [HumanMessage("lc what is the weather like in Paris")]
    first = model.invoke(history)
    (call,) = first.tool_calls
    assert (call["name"], call["args"]) == (script.TOOL_NAME, {"city": "Paris"})
    history += [first, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]
    second = model.invoke(history)
    assert second.text == "The tool said sunny"
    assert not second.tool_calls
    rows = rows_of_key(gateway, name, 2)
    assert [(r.status, r.outcome, r.stream) for r in rows] == [(200, "ok", streaming)] * 2

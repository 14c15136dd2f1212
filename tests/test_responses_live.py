"""The openai Python SDK's Responses calls against a live gateway under gunicorn, on SQLite and PostgreSQL.

Two upstreams play the agent script (tests/fakes/agent_upstream.py) on 127.0.0.1: a chat-only one
(the Responses request translated through canonical chat) and one that serves Responses itself
(relayed natively, continued on its own store). On each: a function call, its output sent back
with previous_response_id, whole and streamed; retrieve, input_items and delete; another user's
404; and one usage row per request billing what the upstream reported. The OpenAI Agents SDK runs a
function tool over the same gateway with its default (Responses) model, whole and streamed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import agents  # openai-agents, the OpenAI Agents SDK
import openai
import pytest

from tests.fakes import agent_upstream
from tests.fakes.agent_upstream import AgentOpenAI
from tests.fakes.gateway_server import GatewayServer, run_gateway, store_url
from tests.fakes.responses_upstream import AgentResponses
from tests.support.live_users import new_user, rows_of

INPUT, OUTPUT = 1.0, 2.0  # USD per million tokens = micro-USD per token
MODELS = {"chat": "chat:gpt-x", "native": "native:gpt-x"}
TOOLS = [
    {
        "type": "function",
        "name": "Read",
        "description": "Read a file.",
        "parameters": {
            "type": "object",
            "properties": {"file_path": {"type": "string"}},
            "required": ["file_path"],
        },
    }
]


@dataclass
class Fakes:
    chat: AgentOpenAI
    native: AgentResponses


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with AgentOpenAI() as chat, AgentResponses() as native:
        yield Fakes(chat, native)


@pytest.fixture(autouse=True)
def fresh_loop_guard(fakes: Fakes) -> None:
    """Give each test the fakes' whole loop guard: they outlive one test, and the guard counts."""
    fakes.chat.main_requests = fakes.native.main_requests = 0


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(request, fakes: Fakes, tmp_path_factory) -> Iterator[GatewayServer]:
    models = f'input_price = {INPUT}\noutput_price = {OUTPUT}\nupstream_id = "gpt-upstream"\n'
    toml = f"""
[providers.chat]
base_url = "{fakes.chat.url}"
api_key = "{agent_upstream.SECRET}"
[providers.chat.models.gpt-x]
{models}
[providers.native]
base_url = "{fakes.native.url}"
api_key = "{agent_upstream.SECRET}"
responses = "native"
[providers.native.models.gpt-x]
{models}
"""
    workdir = tmp_path_factory.mktemp("responses")
    with store_url(request.param, workdir) as url, run_gateway(workdir, url, None, extra_toml=toml) as server:
        yield server


def sdk(gateway: GatewayServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_base, api_key=key, max_retries=0, timeout=20)


def secret_file(tmp_path: Path) -> tuple[Path, str]:
    word = "heron-" + uuid.uuid4().hex[:8]
    path = tmp_path / "secret.txt"
    path.write_text(f"The secret word is: {word}\n")
    return path, word


@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_function_call_round_trip_with_previous_response_id(gateway, tmp_path, provider, streamed):
    email, key = new_user(gateway)
    client = sdk(gateway, key)
    path, word = secret_file(tmp_path)
    model = MODELS[provider]

    def create(**fields):
        if not streamed:
            return client.responses.create(model=model, tools=TOOLS, **fields)
        with client.responses.stream(model=model, tools=TOOLS, **fields) as stream:
            kinds = [event.type for event in stream]
            assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
            return stream.get_final_response()

    first = create(input=f"Read {path} and tell me the secret word.")
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "Read" and str(path) in call.arguments
    output = {"type": "function_call_output", "call_id": call.call_id, "output": path.read_text()}
    second = create(input=[output], previous_response_id=first.id)
    assert second.output_text == f"The secret word is {word}."
    assert second.model == model
    rows = rows_of(gateway, email, 2)
    assert [(r.model, r.status, r.outcome, r.stream, r.estimated) for r in rows] == [
        (model, 200, "ok", streamed, False)
    ] * 2
    for row, answer in zip(rows, (first, second), strict=True):
        assert (row.prompt_tokens, row.completion_tokens) == (
            answer.usage.input_tokens,
            answer.usage.output_tokens,
        )
        assert row.cost_micros == round(row.prompt_tokens * INPUT + row.completion_tokens * OUTPUT)


@pytest.mark.parametrize("provider", list(MODELS))
def test_retrieve_list_and_delete_and_another_users_404(gateway, provider):
    _, key = new_user(gateway)
    _, other_key = new_user(gateway)
    client, other = sdk(gateway, key), sdk(gateway, other_key)
    made = client.responses.create(model=MODELS[provider], input="Hello there")
    assert client.responses.retrieve(made.id).output_text == made.output_text == "Nothing to do."
    items = client.responses.input_items.list(made.id)
    assert [item.content[0].text for item in items.data] == ["Hello there"]
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model=MODELS[provider], input="More", previous_response_id=made.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(made.id)
    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)


def test_input_tokens_are_counted_through_the_sdk(gateway):
    _, key = new_user(gateway)
    client = sdk(gateway, key)
    native = client.responses.input_tokens.count(model=MODELS["native"], input="Hello there")
    assert native.input_tokens == agent_upstream.PROMPT_TOKENS
    estimated = client.responses.input_tokens.count(model=MODELS["chat"], input="Hello there")
    assert estimated.input_tokens > 0


@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_the_agents_sdk_runs_a_tool_through_the_gateway(gateway, tmp_path, provider, streamed):
    agents.set_tracing_disabled(True)  # its traces would go to api.openai.com
    email, key = new_user(gateway)
    path, word = secret_file(tmp_path)
    read_calls = []

    @agents.function_tool(name_override="Read")
    def read(file_path: str) -> str:
        """Read a file."""
        read_calls.append(file_path)
        return Path(file_path).read_text()

    client = openai.AsyncOpenAI(base_url=gateway.api_base, api_key=key, max_retries=0, timeout=20)
    model = agents.OpenAIResponsesModel(model=MODELS[provider], openai_client=client)
    agent = agents.Agent(name="reader", instructions="Use your tools.", model=model, tools=[read])
    prompt = f"Read {path} and tell me the secret word."

    async def run_streamed():
        result = agents.Runner.run_streamed(agent, prompt, max_turns=4)
        async for _ in result.stream_events():
            pass
        return result

    result = asyncio.run(run_streamed()) if streamed else agents.Runner.run_sync(agent, prompt, max_turns=4)
    assert result.final_output == f"The secret word is {word}."
    assert read_calls == [str(path)]
    rows = rows_of(gateway, email, 2)
    assert [(r.model, r.status, r.outcome, r.stream) for r in rows] == [
        (MODELS[provider], 200, "ok", streamed)
    ] * 2

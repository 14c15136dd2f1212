"""The anthropic Python SDK against a live gateway under gunicorn, on SQLite and on PostgreSQL.

Each upstream speaks its real wire format on 127.0.0.1 and plays tests/fakes/script.py: Anthropic
(relayed natively), OpenAI and Gemini (translated through the canonical form). Whole answers,
streams and a tool round trip must read the same through the SDK, each request's one usage row must
bill what the upstream reported (cache reads and writes at their own prices), typed errors must
come without a retry storm, and a client that hangs up mid-stream must be billed what it received.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import anthropic
import httpx2
import pytest
from sqlalchemy import create_engine, func, select

from gateway.store.tables import holds, usage_records
from tests.fakes import agent_upstream, anthropic_upstream, gemini_upstream, script
from tests.fakes.agent_upstream import AgentAnthropic
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gateway_server import GatewayServer, run_gateway, store_url
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.upstream import SECRET, FakeUpstream

INPUT, OUTPUT, CACHED, CACHE_WRITE = 1.0, 2.0, 0.5, 1.25  # USD per million tokens = micro-USD per token
MODELS = {"anthropic": "anthropic:claude", "openai": "openai:script-gpt", "gemini": "gemini:flash"}
# The fakes' own cache-write counts: only Anthropic reports any.
WRITTEN = {"anthropic": anthropic_upstream.CACHE_WRITE, "openai": 0, "gemini": 0}
TOOLS = [
    {
        "name": script.TOOL_NAME,
        "description": "The weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


@dataclass
class Upstreams:
    anthropic: FakeAnthropic
    openai: FakeUpstream
    gemini: FakeGemini
    agent: AgentAnthropic

    def find(self, provider: str, marker: str):
        return getattr(self, provider).find(marker)


def _prices(section: str, upstream_id: str) -> str:
    return (
        f"[{section}]\ninput_price = {INPUT}\noutput_price = {OUTPUT}\ncached_input_price = {CACHED}\n"
        f'cache_write_price = {CACHE_WRITE}\nupstream_id = "{upstream_id}"\n'
    )


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    with FakeAnthropic() as ant, FakeUpstream() as oai, FakeGemini() as gem, AgentAnthropic() as agent:
        yield Upstreams(ant, oai, gem, agent)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(request, upstreams: Upstreams, tmp_path_factory) -> Iterator[GatewayServer]:
    toml = f"""
[providers.anthropic]
type = "anthropic"
base_url = "{upstreams.anthropic.url}"
api_key = "{anthropic_upstream.SECRET}"
{_prices("providers.anthropic.models.claude", "claude-x")}
[providers.openai]
base_url = "{upstreams.openai.url}"
api_key = "{SECRET}"
{_prices("providers.openai.models.script-gpt", "script-gpt")}
{_prices("providers.openai.models.slow", "slow")}
[providers.gemini]
type = "gemini"
base_url = "{upstreams.gemini.url}"
api_key = "{gemini_upstream.SECRET}"
{_prices("providers.gemini.models.flash", "gemini-x")}
[providers.agent]
type = "anthropic"
base_url = "{upstreams.agent.url}"
api_key = "{agent_upstream.SECRET}"
{_prices("providers.agent.models.slow", agent_upstream.SLOW_MODEL)}
{_prices("providers.agent.models.counted", "counted")}
"""
    workdir = tmp_path_factory.mktemp("messages")
    with (
        store_url(request.param, workdir) as url,
        run_gateway(workdir, url, None, extra_toml=toml) as server,
    ):
        yield server


class Counter:
    """Counts the HTTP requests an SDK client sends, retries included."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, request: httpx2.Request) -> None:
        self.requests += 1


def sdk(gateway: GatewayServer, key: str | None = None, counter: Counter | None = None, **options):
    hooks = {"request": [counter]} if counter is not None else {}
    return anthropic.Anthropic(
        base_url=gateway.base_url + "/api",
        api_key=key or gateway.key,
        http_client=httpx2.Client(event_hooks=hooks, timeout=20),
        **({"max_retries": 0} | options),
        _strict_response_validation=True,
    )


def question() -> tuple[str, str]:
    tag = "m" + uuid.uuid4().hex[:12]
    return tag, f"{tag} what is the weather like"


def rows_of(gateway: GatewayServer, request_id: str, timeout: float = 5.0) -> tuple[list, int]:
    """Return the request's usage rows, waiting for the first: a stream settles as it ends."""
    engine = create_engine(gateway.database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(usage_records).where(usage_records.c.request_id == request_id)
                ).all()
                left = conn.execute(
                    select(func.count()).select_from(holds).where(holds.c.request_id == request_id)
                ).scalar_one()
            if (rows and not left) or time.monotonic() > deadline:
                return rows, left
            time.sleep(0.02)
    finally:
        engine.dispose()


def assert_billed(gateway: GatewayServer, request_id: str, billed: script.Billed, written: int) -> None:
    """Check the one row and its cost: cache reads at the cached price, cache writes at theirs."""
    (row,), left = rows_of(gateway, request_id)
    assert left == 0, "the hold outlived the request"
    assert (row.status, row.outcome, row.estimated) == (200, "ok", False)
    assert (row.prompt_tokens, row.completion_tokens, row.cached_tokens) == (
        billed.prompt_tokens,
        billed.completion_tokens,
        billed.cached_tokens,
    )
    plain = billed.prompt_tokens - billed.cached_tokens - written
    cost = (
        plain * INPUT
        + billed.cached_tokens * CACHED
        + written * CACHE_WRITE
        + billed.completion_tokens * OUTPUT
    )
    assert row.cost_micros == math.ceil(cost)


@pytest.mark.parametrize("provider", list(MODELS))
def test_whole_answer_reads_the_same_and_is_billed_as_reported(gateway, upstreams, provider):
    tag, text = question()
    with sdk(gateway) as client:
        raw = client.messages.with_raw_response.create(
            model=MODELS[provider],
            max_tokens=200,
            system="Be brief.",
            messages=[{"role": "user", "content": text}],
        )
    message = raw.parse()
    assert (message.model, message.stop_reason, message.content[0].text) == (
        MODELS[provider],
        "end_turn",
        text,
    )
    assert raw.request_id == raw.headers["x-request-id"]
    billed = upstreams.find(provider, tag).billed
    usage = message.usage
    assert usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens == (
        billed.prompt_tokens
    )
    assert (usage.cache_read_input_tokens, usage.output_tokens) == (
        billed.cached_tokens,
        billed.completion_tokens,
    )
    assert_billed(gateway, raw.request_id, billed, WRITTEN[provider])


@pytest.mark.parametrize("provider", list(MODELS))
def test_stream_reads_the_same_and_is_billed_as_reported(gateway, upstreams, provider):
    tag, text = question()
    with sdk(gateway) as client:
        with client.messages.stream(
            model=MODELS[provider], max_tokens=200, messages=[{"role": "user", "content": text}]
        ) as stream:
            pieces = list(stream.text_stream)
            message = stream.get_final_message()
            request_id = stream.response.headers["x-request-id"]
            assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert "".join(pieces) == text == message.content[0].text
    assert (message.model, message.stop_reason) == (MODELS[provider], "end_turn")
    billed = upstreams.find(provider, tag).billed
    assert message.usage.output_tokens == billed.completion_tokens
    assert_billed(gateway, request_id, billed, WRITTEN[provider])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
def test_tool_round_trip(gateway, upstreams, provider, stream):
    tag, text = question()
    messages: list[dict] = [{"role": "user", "content": text}]
    with sdk(gateway) as client:

        def ask() -> tuple[anthropic.types.Message, str]:
            options = {"model": MODELS[provider], "max_tokens": 200, "tools": TOOLS, "messages": messages}
            if not stream:
                raw = client.messages.with_raw_response.create(**options)
                return raw.parse(), raw.request_id
            with client.messages.stream(**options) as events:
                return events.get_final_message(), events.response.headers["x-request-id"]

        first, first_id = ask()
        (call,) = [b for b in first.content if b.type == "tool_use"]
        assert (first.stop_reason, call.name, call.input) == ("tool_use", script.TOOL_NAME, {"city": "Paris"})
        messages += [
            {"role": "assistant", "content": [b.model_dump(exclude_unset=True) for b in first.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}],
            },
        ]
        second, second_id = ask()
    assert (second.stop_reason, second.content[0].text) == ("end_turn", "The tool said sunny")
    assert first_id != second_id
    for request_id in (first_id, second_id):
        (row,), _ = rows_of(gateway, request_id)
        assert (row.status, row.outcome, row.estimated, row.stream) == (200, "ok", False, stream)


def test_a_bad_key_is_authentication_error_sent_once(gateway):
    counter = Counter()
    with sdk(gateway, "sk-" + "x" * 43, counter, max_retries=2) as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            client.messages.create(
                model=MODELS["openai"], max_tokens=10, messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.body["error"]["type"] == "authentication_error"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert counter.requests == 1


def test_an_unknown_model_is_not_found_error_sent_once(gateway):
    counter = Counter()
    with sdk(gateway, counter=counter, max_retries=2) as client:
        with pytest.raises(anthropic.NotFoundError) as caught:
            client.messages.create(
                model="openai:nope", max_tokens=10, messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.type == "not_found_error"
    assert counter.requests == 1


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_empty_balance_is_rate_limit_error_without_a_retry_storm(gateway, upstreams, stream):
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    gateway.cli("users", "create", email)  # balance 0
    counter = Counter()
    tag, text = question()
    with sdk(gateway, gateway.create_key("--user", email), counter, max_retries=2) as client:
        with pytest.raises(anthropic.RateLimitError) as caught:
            options = {
                "model": MODELS["anthropic"],
                "max_tokens": 10,
                "messages": [{"role": "user", "content": text}],
            }
            if stream:
                with client.messages.stream(**options) as events:
                    events.get_final_message()
            else:
                client.messages.create(**options)
    assert caught.value.type == "billing_error"
    assert counter.requests == 1, "the SDK retried a final 429"
    assert not any(tag.encode() in ex.raw for ex in upstreams.anthropic.exchanges), "no upstream call"


def test_a_key_limited_to_other_models_is_permission_denied(gateway):
    key = gateway.create_key("--models", MODELS["openai"])
    with sdk(gateway, key) as client:
        with pytest.raises(anthropic.PermissionDeniedError):
            client.messages.create(
                model=MODELS["anthropic"], max_tokens=10, messages=[{"role": "user", "content": "x"}]
            )


@pytest.mark.parametrize("model", ["agent:slow", "openai:slow"], ids=["native", "translated"])
def test_a_client_that_hangs_up_mid_stream_is_billed_what_it_received(gateway, upstreams, model):
    received = ""
    with sdk(gateway) as client:
        with client.messages.stream(
            model=model, max_tokens=300, messages=[{"role": "user", "content": "count slowly"}]
        ) as stream:
            request_id = stream.response.headers["x-request-id"]
            for piece in stream.text_stream:
                received += piece
                if len(received.split()) >= 5:
                    break  # leaving the block closes the connection
    (row,), left = rows_of(gateway, request_id, timeout=10)
    assert left == 0, "the hold outlived the request"
    assert (row.status, row.outcome, row.stream, row.estimated) == (200, "client_disconnected", True, True)
    assert math.ceil(len(received.encode()) / 4) <= row.completion_tokens < 300
    assert row.cost_micros >= row.completion_tokens * OUTPUT > 0
    if model == "agent:slow":
        deadline = time.monotonic() + 5
        while not upstreams.agent.hung_up and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstreams.agent.hung_up, "the upstream kept streaming after the client went away"
        assert row.prompt_tokens == agent_upstream.PROMPT_TOKENS  # message_start's exact input count


def test_count_tokens_is_the_upstreams_count_on_anthropic_and_an_estimate_elsewhere(gateway):
    body = {"messages": [{"role": "user", "content": "Hello there, how are you?"}]}
    with sdk(gateway) as client:
        native = client.messages.with_raw_response.count_tokens(model="agent:counted", **body)
        estimated = client.messages.with_raw_response.count_tokens(model=MODELS["openai"], **body)
    assert native.parse().input_tokens == agent_upstream.PROMPT_TOKENS
    assert "x-gateway-estimated" not in native.headers
    assert estimated.parse().input_tokens > 0 and estimated.headers["x-gateway-estimated"] == "true"


def test_models_list_through_the_sdk(gateway):
    with sdk(gateway) as client:
        ids = {model.id for model in client.models.list()}
        one = client.models.retrieve(MODELS["anthropic"])
    assert set(MODELS.values()) <= ids
    assert (one.id, one.type) == (MODELS["anthropic"], "model")

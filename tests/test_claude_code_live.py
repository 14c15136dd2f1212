"""Claude Code itself through a live gateway: `claude -p` reads a file with its Read tool and answers.

Claude Code 2.1.197 (pinned: later versions need Node 22) is installed from npm into var/npm/ by
tests/support/npm.py; without npm this module is skipped loudly, and in CI it fails. Each run gets a
temporary HOME and CLAUDE_CONFIG_DIR, a secret file with a random word, and a bounded timeout. The
upstream fakes (tests/fakes/agent_upstream.py) ask for a Read call, then answer from its result, on
an anthropic provider (relayed natively), an OpenAI-compatible one and Gemini (both translated).
CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK=1 makes a bad stream fail instead of being retried
whole, and CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 keeps it off every other host.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from gateway.store.tables import usage_records, users
from tests.fakes import agent_upstream
from tests.fakes.agent_upstream import AgentAnthropic, AgentGemini, AgentOpenAI
from tests.fakes.gateway_server import GatewayServer, run_gateway, store_url
from tests.support import npm

VERSION = "2.1.197"
RUN_TIMEOUT = 90  # seconds for one claude run; a round trip takes about 2
INPUT, OUTPUT, CACHED = 1.0, 2.0, 0.5  # USD per million tokens = micro-USD per token
MODELS = {"anthropic": "anthropic:claude-x", "openai": "openai:gpt-x", "gemini": "gemini:gem-x"}


@dataclass
class Fakes:
    anthropic: AgentAnthropic
    openai: AgentOpenAI
    gemini: AgentGemini

    def of(self, provider: str) -> agent_upstream._Agent:
        return getattr(self, provider)


@pytest.fixture(scope="module")
def claude() -> Path:
    modules = npm.install("@anthropic-ai/claude-code", VERSION)
    binary = modules / "@anthropic-ai" / "claude-code" / "bin" / "claude.exe"
    if not binary.exists() or binary.stat().st_size < 1_000_000:
        # The postinstall links the platform package's binary here; a future npm may skip it.
        found = sorted(modules.glob("@anthropic-ai/claude-code-*/claude"))
        assert found, f"no claude binary under {modules}"
        binary = found[0]
    return binary


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with AgentAnthropic() as ant, AgentOpenAI() as oai, AgentGemini() as gem:
        yield Fakes(ant, oai, gem)


def _priced(section: str, upstream_id: str) -> str:
    return (
        f"[{section}]\ninput_price = {INPUT}\noutput_price = {OUTPUT}\n"
        f'cached_input_price = {CACHED}\nupstream_id = "{upstream_id}"\n'
    )


@pytest.fixture(scope="module")
def gateway(fakes: Fakes, tmp_path_factory) -> Iterator[GatewayServer]:
    toml = f"""
[providers.anthropic]
type = "anthropic"
base_url = "{fakes.anthropic.url}"
api_key = "{agent_upstream.SECRET}"
{_priced("providers.anthropic.models.claude-x", "claude-upstream")}
[providers.openai]
base_url = "{fakes.openai.url}"
api_key = "{agent_upstream.SECRET}"
{_priced("providers.openai.models.gpt-x", "gpt-upstream")}
[providers.gemini]
type = "gemini"
base_url = "{fakes.gemini.url}"
api_key = "{agent_upstream.SECRET}"
{_priced("providers.gemini.models.gem-x", "gem-upstream")}
"""
    workdir = tmp_path_factory.mktemp("claude_code")
    with store_url("sqlite", workdir) as url, run_gateway(workdir, url, None, extra_toml=toml) as server:
        yield server


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    word: str


def run_claude(claude: Path, gateway: GatewayServer, key: str, model: str, tmp_path: Path) -> Run:
    """Run `claude -p` headless in a fresh home, asking it to read a secret file."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    word = "pelican-" + uuid.uuid4().hex[:10]
    secret = work / "secret.txt"
    secret.write_text(f"Hello.\nThe secret word is: {word}\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(tmp_path),
        "TERM": "dumb",
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": gateway.base_url + "/api",
        "ANTHROPIC_AUTH_TOKEN": key,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "CLAUDE_CODE_DISABLE_NONSTREAMING_FALLBACK": "1",
    }
    prompt = f"Read the file {secret} and tell me the secret word."
    started = time.monotonic()
    proc = subprocess.run(
        [str(claude), "-p", prompt, "--model", model, "--allowedTools", "Read"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started, word)


def new_user(gateway: GatewayServer, credit: str | None = "10") -> tuple[str, str]:
    """Create a user (credited, unless credit is None) with a key; return the email and the key."""
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    gateway.cli("users", "create", email)
    if credit is not None:
        gateway.cli("credit", email, credit)
    return email, gateway.create_key("--user", email)


def rows_of(gateway: GatewayServer, email: str) -> list:
    engine = create_engine(gateway.database_url)
    try:
        with engine.connect() as conn:
            user_id = conn.execute(select(users.c.id).where(users.c.email == email)).scalar_one()
            query = (
                select(usage_records).where(usage_records.c.user_id == user_id).order_by(usage_records.c.id)
            )
            return list(conn.execute(query).all())
    finally:
        engine.dispose()


@pytest.mark.parametrize("provider", list(MODELS))
def test_claude_code_reads_a_file_through_the_gateway_and_answers_from_it(
    claude, gateway, fakes, tmp_path, provider
):
    fake = fakes.of(provider)
    before = len(fake.messages_calls())
    email, key = new_user(gateway)
    run = run_claude(claude, gateway, key, MODELS[provider], tmp_path)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.word in run.stdout, f"the secret word is not in the answer:\n{run.stdout}"
    calls = fake.messages_calls()[before:]
    # One streamed request for the Read call, one for the answer: nothing retried, nothing whole.
    assert len(calls) == 2, [c.path for c in calls]
    assert all(fake.streamed(c) for c in calls)
    rows = rows_of(gateway, email)
    assert [(r.model, r.status, r.outcome, r.stream, r.estimated) for r in rows] == [
        (MODELS[provider], 200, "ok", True, False)
    ] * 2
    for row, call in zip(rows, calls, strict=True):
        billed = call.billed
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
        assert row.cost_micros == round(cost)


def test_claude_code_sends_its_betas_and_its_own_body_to_an_anthropic_upstream(
    claude, gateway, fakes, tmp_path
):
    before = len(fakes.anthropic.messages_calls())
    _, key = new_user(gateway)
    run = run_claude(claude, gateway, key, MODELS["anthropic"], tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    first = fakes.anthropic.messages_calls()[before]
    assert first.headers["x-api-key"] == agent_upstream.SECRET
    assert key not in first.raw.decode() + repr(first.headers)
    assert "claude-code-20250219" in first.headers["anthropic-beta"]
    assert first.body["model"] == "claude-upstream"
    # Relayed natively: what a translation would drop arrives as Claude Code sent it.
    assert {"context_management", "thinking", "output_config", "metadata"} <= set(first.body)
    assert any(m["role"] == "system" for m in first.body["messages"])


@pytest.mark.parametrize("case", ["bad_key", "no_balance"])
def test_a_final_error_stops_claude_code_at_once(claude, gateway, fakes, tmp_path, case):
    # Claude Code's own retries are left on: without x-should-retry: false it would try 11 times
    # over about 3 minutes before giving up (shared/reference/agent-clients.md).
    if case == "bad_key":
        key, expected = "sk-" + "x" * 43, "401"
    else:
        key, expected = new_user(gateway, credit=None)[1], "429"
    before = len(fakes.anthropic.messages_calls())
    run = run_claude(claude, gateway, key, MODELS["anthropic"], tmp_path)
    assert run.returncode != 0
    assert expected in run.stdout, run.stdout + run.stderr
    assert run.seconds < 20, f"took {run.seconds:.1f} s: Claude Code retried"
    assert len(fakes.anthropic.messages_calls()) == before, "no upstream call without a key or money"

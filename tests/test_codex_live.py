"""Codex CLI itself through a live gateway: `codex exec` cats a file with exec_command and answers from it.

Codex 0.171.0 is installed from npm into var/npm/ by tests/support/npm.py; without npm this module
is skipped loudly, and in CI it fails. Each run gets a temporary HOME and CODEX_HOME whose
config.toml has a model_providers entry with wire_api = "responses" pointing at the gateway, a
secret file with a random word, and a bounded timeout. The fakes ask for an exec_command call
(`cat <path>`), then answer from its output: on one serving Responses itself (relayed natively),
and on OpenAI-compatible chat, Anthropic and Gemini upstreams (translated). The sandbox is off
(danger-full-access): containers often lack what Codex's Linux sandbox needs, and the fake only
ever asks for `cat`.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes import agent_upstream
from tests.fakes.agent_upstream import AgentAnthropic, AgentGemini, AgentOpenAI
from tests.fakes.gateway_server import GatewayServer, run_gateway, store_url
from tests.fakes.responses_upstream import AgentResponses
from tests.support import npm
from tests.support.live_users import new_user, rows_of

VERSION = "0.171.0"
RUN_TIMEOUT = 120  # seconds for one codex run; a round trip takes a few
INPUT, OUTPUT = 1.0, 2.0  # USD per million tokens = micro-USD per token
MODELS = {
    "chat": "chat:gpt-x",
    "native": "native:gpt-x",
    "anthropic": "anthropic:claude-x",
    "gemini": "gemini:gem-x",
}


@dataclass
class Fakes:
    chat: AgentOpenAI
    native: AgentResponses
    anthropic: AgentAnthropic
    gemini: AgentGemini

    def of(self, provider: str) -> agent_upstream._Agent:
        return getattr(self, provider)


@pytest.fixture(scope="module")
def codex() -> Path:
    modules = npm.install("@openai/codex", VERSION)
    script = modules / "@openai" / "codex" / "bin" / "codex.js"
    assert script.exists(), f"no codex launcher under {modules}"
    return script


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with AgentOpenAI() as chat, AgentResponses() as native, AgentAnthropic() as ant, AgentGemini() as gem:
        yield Fakes(chat, native, ant, gem)


@pytest.fixture(scope="module")
def gateway(fakes: Fakes, tmp_path_factory) -> Iterator[GatewayServer]:
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
[providers.anthropic]
type = "anthropic"
base_url = "{fakes.anthropic.url}"
api_key = "{agent_upstream.SECRET}"
[providers.anthropic.models.claude-x]
{models}
[providers.gemini]
type = "gemini"
base_url = "{fakes.gemini.url}"
api_key = "{agent_upstream.SECRET}"
[providers.gemini.models.gem-x]
{models}
"""
    workdir = tmp_path_factory.mktemp("codex")
    with store_url("sqlite", workdir) as url, run_gateway(workdir, url, None, extra_toml=toml) as server:
        yield server


def codex_config(gateway: GatewayServer, model: str) -> str:
    """Return the config.toml the README gives for Codex through the gateway."""
    return f"""model = "{model}"
model_provider = "gateway"

[model_providers.gateway]
name = "gateway"
base_url = "{gateway.api_base}"
env_key = "GATEWAY_API_KEY"
wire_api = "responses"
supports_websockets = false
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    word: str


def run_codex(codex: Path, gateway: GatewayServer, key: str, model: str, tmp_path: Path) -> Run:
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".codex").mkdir(parents=True)
    work.mkdir()
    (home / ".codex" / "config.toml").write_text(codex_config(gateway, model))
    word = "otter-" + uuid.uuid4().hex[:10]
    secret = work / "secret.txt"
    secret.write_text(f"Hello.\nThe secret word is: {word}\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "TMPDIR": str(tmp_path),
        "TERM": "dumb",
        "NO_COLOR": "1",
        "GATEWAY_API_KEY": key,
    }
    prompt = f"Run cat on the file {secret} and tell me the secret word."
    args = ["node", str(codex), "exec", "--skip-git-repo-check", "-s", "danger-full-access", prompt]
    started = time.monotonic()
    proc = subprocess.run(
        args,
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started, word)


@pytest.mark.parametrize("provider", list(MODELS))
def test_codex_runs_exec_command_through_the_gateway_and_answers_from_it(
    codex, gateway, fakes, tmp_path, provider
):
    fake = fakes.of(provider)
    before = len(fake.messages_calls())
    email, key = new_user(gateway)
    run = run_codex(codex, gateway, key, MODELS[provider], tmp_path)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.word in run.stdout, f"the secret word is not in the answer:\n{run.stdout}\n{run.stderr}"
    calls = fake.messages_calls()[before:]
    main = [c for c in calls if c.body.get("tools")]
    assert len(main) == 2, [c.path for c in calls]  # the exec_command call, then the answer
    assert all(fake.streamed(c) for c in main)
    rows = rows_of(gateway, email, len(calls))
    assert [(r.model, r.status, r.outcome, r.stream) for r in rows] == [
        (MODELS[provider], 200, "ok", True)
    ] * len(calls)
    for row, call in zip(rows, calls, strict=True):
        assert (row.prompt_tokens, row.completion_tokens) == (
            call.billed.prompt_tokens,
            call.billed.completion_tokens,
        )

"""The TypeScript SDK (npm @anthropic-ai/sdk, pinned) against a live gateway: whole, stream, typed errors.

Installed into var/npm/ by tests/support/npm.py (skipped loudly without npm, failed in CI). A small
Node script runs every call and prints one JSON line of results, which the test reads. The upstream
is the anthropic fake (relayed natively) and the OpenAI fake (translated), both playing the script.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import anthropic_upstream
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gateway_server import GatewayServer, run_gateway, store_url
from tests.fakes.upstream import SECRET, FakeUpstream
from tests.support import npm

VERSION = "1.15.0"
MODELS = {"anthropic": "anthropic:claude", "openai": "openai:script-gpt"}
SCRIPT = r"""
const Anthropic = require("@anthropic-ai/sdk");
const [baseURL, apiKey, model, text] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey, maxRetries: 2 });
const out = {};
async function kind(promise) {
  try { await promise; return "none"; } catch (err) { return err.constructor.name + ":" + err.status; }
}
(async () => {
  const request = { model, max_tokens: 100, messages: [{ role: "user", content: text }] };
  const whole = await client.messages.create(request);
  const [first] = whole.content;
  out.whole = { text: first.text, model: whole.model, stop: whole.stop_reason, usage: whole.usage };
  const stream = client.messages.stream(request);
  let streamed = "";
  stream.on("text", (piece) => { streamed += piece; });
  const final = await stream.finalMessage();
  out.stream = { text: streamed, final: final.content[0].text, stop: final.stop_reason };
  out.notFound = await kind(client.messages.create({ ...request, model: "openai:nope" }));
  const stranger = new Anthropic({ baseURL, apiKey: "sk-" + "x".repeat(43), maxRetries: 2 });
  out.badKey = await kind(stranger.messages.create(request));
  console.log(JSON.stringify(out));
})().catch((err) => { console.error(err); process.exit(1); });
"""


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return npm.install("@anthropic-ai/sdk", VERSION)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[tuple[GatewayServer, FakeAnthropic, FakeUpstream]]:
    with FakeAnthropic() as ant, FakeUpstream() as oai:
        toml = f"""
[providers.anthropic]
type = "anthropic"
base_url = "{ant.url}"
api_key = "{anthropic_upstream.SECRET}"
[providers.anthropic.models.claude]
upstream_id = "claude-x"
[providers.openai]
base_url = "{oai.url}"
api_key = "{SECRET}"
[providers.openai.models.script-gpt]
"""
        workdir = tmp_path_factory.mktemp("ts_sdk")
        with store_url("sqlite", workdir) as url, run_gateway(workdir, url, None, extra_toml=toml) as server:
            yield server, ant, oai


@pytest.mark.parametrize("provider", list(MODELS))
def test_typescript_sdk_reads_whole_and_streamed_answers_and_typed_errors(
    node_modules, gateway, tmp_path, provider
):
    server, ant, oai = gateway
    text = f"m{uuid.uuid4().hex[:10]} hello from node"
    args = [server.base_url + "/api", server.key, MODELS[provider], text]
    out = npm.run_script(SCRIPT, args, node_modules, tmp_path)
    assert out["whole"]["text"] == text and out["whole"]["model"] == MODELS[provider]
    assert out["whole"]["stop"] == "end_turn" and out["whole"]["usage"]["output_tokens"] > 0
    assert out["stream"] == {"text": text, "final": text, "stop": "end_turn"}
    assert out["notFound"] == "NotFoundError:404"
    assert out["badKey"] == "AuthenticationError:401"
    fake = ant if provider == "anthropic" else oai
    assert sum(text.encode() in ex.raw for ex in fake.exchanges) == 2  # the whole and the streamed call

"""The openai Node SDK's Responses calls (npm openai, pinned) against a live gateway.

Installed into var/npm/ by tests/support/npm.py (skipped loudly without npm, failed in CI). A Node
script runs a function-call round trip with previous_response_id, whole (`responses.create`) and
streamed (`responses.stream`), plus an unknown model, and prints one JSON line the test reads. The
upstreams play the agent script: a chat-only one (translated) and one serving Responses (native).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import agent_upstream
from tests.fakes.agent_upstream import AgentOpenAI
from tests.fakes.gateway_server import GatewayServer, run_gateway, store_url
from tests.fakes.responses_upstream import AgentResponses
from tests.support import npm
from tests.support.live_users import new_user, rows_of

VERSION = "7.59.0"
MODELS = {"chat": "chat:gpt-x", "native": "native:gpt-x"}
SCRIPT = r"""
const OpenAI = require("openai");
const [baseURL, apiKey, model, path, streamed] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 2 });
const tools = [{
  type: "function", name: "Read", description: "Read a file.",
  parameters: { type: "object", properties: { file_path: { type: "string" } }, required: ["file_path"] },
}];
async function create(fields) {
  if (streamed !== "true") return client.responses.create({ model, tools, ...fields });
  const stream = client.responses.stream({ model, tools, ...fields });
  const kinds = [];
  for await (const event of stream) kinds.push(event.type);
  const final = await stream.finalResponse();
  final.kinds = [kinds[0], kinds[kinds.length - 1]];
  return final;
}
(async () => {
  const out = {};
  const first = await create({ input: `Read ${path} and tell me the secret word.` });
  const call = first.output.find((item) => item.type === "function_call");
  out.call = { name: call.name, arguments: call.arguments, kinds: first.kinds };
  const fs = require("fs");
  const text = fs.readFileSync(path, "utf8");
  const output = { type: "function_call_output", call_id: call.call_id, output: text };
  const second = await create({ input: [output], previous_response_id: first.id });
  out.answer = { text: second.output_text, model: second.model, usage: second.usage };
  try {
    await client.responses.create({ model: "chat:nope", input: "x" });
    out.notFound = "none";
  } catch (err) {
    out.notFound = err.constructor.name + ":" + err.status;
  }
  console.log(JSON.stringify(out));
})().catch((err) => { console.error(err); process.exit(1); });
"""


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return npm.install("openai", VERSION)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[GatewayServer]:
    with AgentOpenAI() as chat, AgentResponses() as native:
        models = 'input_price = 1.0\noutput_price = 2.0\nupstream_id = "gpt-upstream"\n'
        toml = f"""
[providers.chat]
base_url = "{chat.url}"
api_key = "{agent_upstream.SECRET}"
[providers.chat.models.gpt-x]
{models}
[providers.native]
base_url = "{native.url}"
api_key = "{agent_upstream.SECRET}"
responses = "native"
[providers.native.models.gpt-x]
{models}
"""
        workdir = tmp_path_factory.mktemp("node_responses")
        with store_url("sqlite", workdir) as url, run_gateway(workdir, url, None, extra_toml=toml) as server:
            yield server


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("provider", list(MODELS))
def test_node_sdk_round_trip_with_previous_response_id(node_modules, gateway, tmp_path, provider, streamed):
    email, key = new_user(gateway)
    word = "heron-" + uuid.uuid4().hex[:8]
    path = tmp_path / "secret.txt"
    path.write_text(f"The secret word is: {word}\n")
    args = [gateway.api_base, key, MODELS[provider], str(path), str(streamed).lower()]
    out = npm.run_script(SCRIPT, args, node_modules, tmp_path)
    assert out["call"]["name"] == "Read" and str(path) in out["call"]["arguments"]
    if streamed:
        assert out["call"]["kinds"] == ["response.created", "response.completed"]
    assert (out["answer"]["text"], out["answer"]["model"]) == (
        f"The secret word is {word}.",
        MODELS[provider],
    )
    assert out["notFound"] == "NotFoundError:404"
    rows = rows_of(gateway, email, 2)
    assert [(r.status, r.outcome, r.stream) for r in rows] == [(200, "ok", streamed)] * 2
    usage = out["answer"]["usage"]
    assert (rows[1].prompt_tokens, rows[1].completion_tokens) == (
        usage["input_tokens"],
        usage["output_tokens"],
    )

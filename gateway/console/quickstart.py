"""The quickstart: this gateway's base URL and copy-ready curl, Python and JavaScript snippets."""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template, request

from gateway.blueprints.services import services
from gateway.console.base import bp, signed_in

CURL = """\
curl {base}/chat/completions \\
  -H "Authorization: Bearer $GATEWAY_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{
    "model": "{model}",
    "messages": [{{"role": "user", "content": "Hi, just reply with \\"Hi\\""}}],
    "max_tokens": 128,
    "stream": false
  }}'"""

CURL_STREAM = """\
curl -N {base}/chat/completions \\
  -H "Authorization: Bearer $GATEWAY_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "{model}", "stream": true,
       "messages": [{{"role": "user", "content": "Introduce yourself in one sentence"}}]}}'"""

PYTHON = """\
import os

from openai import OpenAI

client = OpenAI(base_url="{base}", api_key=os.environ["GATEWAY_API_KEY"])

resp = client.chat.completions.create(
    model="{model}",
    messages=[{{"role": "user", "content": "Hi"}}],
)
print(resp.choices[0].message.content)

for chunk in client.chat.completions.create(
    model="{model}",
    messages=[{{"role": "user", "content": "Count to five"}}],
    stream=True,
):
    if chunk.choices:
        print(chunk.choices[0].delta.content or "", end="")"""

JAVASCRIPT = """\
const resp = await fetch("{base}/chat/completions", {{
  method: "POST",
  headers: {{
    "Authorization": `Bearer ${{process.env.GATEWAY_API_KEY}}`,
    "Content-Type": "application/json",
  }},
  body: JSON.stringify({{
    model: "{model}",
    messages: [{{ role: "user", content: "Hi" }}],
    stream: false,
  }}),
}});

const data = await resp.json();
console.log(data.choices[0].message.content);"""


@dataclass(frozen=True)
class Snippet:
    title: str
    id: str
    code: str


def snippets(base_url: str, model: str) -> list[Snippet]:
    """Return the examples, filled in with this gateway's base URL and a model it serves."""
    fill = {"base": base_url, "model": model}
    return [
        Snippet("curl", "snippet-curl", CURL.format(**fill)),
        Snippet("curl, streamed", "snippet-curl-stream", CURL_STREAM.format(**fill)),
        Snippet("Python (openai SDK)", "snippet-python", PYTHON.format(**fill)),
        Snippet("JavaScript (Node.js, fetch)", "snippet-js", JAVASCRIPT.format(**fill)),
    ]


@bp.get("/quickstart")
@signed_in
def quickstart() -> str:
    """Show how to call this gateway, with its own address and model names."""
    models = list(services().catalog.targets)
    # Prefer a real provider's model for the examples; the mock is always there as a fallback.
    example = next((m for m in models if not m.startswith("mock:")), models[0] if models else "mock:echo")
    base_url = request.host_url.rstrip("/") + "/api/v1"
    return render_template(
        "quickstart.html",
        base_url=base_url,
        models=models,
        model=example,
        snippets=snippets(base_url, example),
    )

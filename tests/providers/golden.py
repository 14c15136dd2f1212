"""Golden-file cases for adapters of other wire formats (Anthropic, Gemini …), one folder each.

For each case in fixtures/<provider>/:
  <case>.request.json                the client's OpenAI body            -> <case>.upstream.json
                                     (the upstream body; "stream" in the client body picks the URL)
  <case>.response.json               a whole upstream answer             -> <case>.expected.json
  <case>.sse                         an upstream stream                  -> <case>.expected.sse and
                                     <case>.include_usage.expected.sse (the client's bytes without and
                                     with stream_options.include_usage)
  <case>.usage.json                  the Usage the answer or stream ends with (null for none)
  <case>.error.json                  the stream must fail with this error (status, type, code, message)
Set GOLDEN_UPDATE=1 to write missing expected files from the code's output; review them before use.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import UpstreamError
from gateway.providers.base import Adapter
from gateway.upstream.sse import Decoder

FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC_MODEL = "acme:chat-model"
UPSTREAM_MODEL = "chat-model"
CLOCK = 1700000000.0


def pin(adapter: Adapter) -> Adapter:
    """Fix the adapter's clock and made-up ids, so its output can be compared byte for byte."""
    counter = iter(range(1, 10_000))
    adapter.clock = lambda: CLOCK
    adapter.new_id = lambda: f"id{next(counter):04d}"
    return adapter


def cases(provider: str, suffix: str) -> list[str]:
    folder = FIXTURES / provider
    return sorted(
        p.name[: -len(suffix)]
        for p in folder.glob(f"*{suffix}")
        if not p.name.endswith(".expected.sse") or suffix != ".sse"
    )


def stream_params(provider: str) -> list[Any]:
    params = []
    for case in cases(provider, ".sse"):
        for suffix, client_usage in ((".expected.sse", False), (".include_usage.expected.sse", True)):
            mode = "include_usage" if client_usage else "no_usage"
            params.append(pytest.param(case, suffix, client_usage, id=f"{case}-{mode}"))
    return params


def check(path: Path, got: str) -> None:
    """Compare with a golden file, or write it when GOLDEN_UPDATE is set and it is missing."""
    if not path.exists() and os.environ.get("GOLDEN_UPDATE"):
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"missing golden file {path.name}"
    assert got == path.read_text(encoding="utf-8")


def as_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def usage_json(usage: Any) -> str:
    return json.dumps(None if usage is None else dataclasses.asdict(usage)) + "\n"


def run_stream(adapter: Adapter, raw: bytes, client_usage: bool) -> tuple[bytes, Any, UpstreamError | None]:
    """Feed raw upstream bytes through the decoder and a fresh translator, as the relay does."""
    translator = adapter.translator(PUBLIC_MODEL, UPSTREAM_MODEL, client_usage)
    decoder, out, error = Decoder(), [], None
    try:
        for event in decoder.feed(raw) + decoder.flush():
            out += translator.feed(event)
        out += translator.finish()
    except UpstreamError as exc:
        error = exc
    return b"".join(out), translator, error


def check_stream(adapter: Adapter, provider: str, case: str, suffix: str, client_usage: bool) -> None:
    folder = FIXTURES / provider
    body, translator, error = run_stream(adapter, (folder / f"{case}.sse").read_bytes(), client_usage)
    check(folder / f"{case}{suffix}", body.decode())
    check(folder / f"{case}.usage.json", usage_json(translator.usage))
    error_file = folder / f"{case}.error.json"
    if not error_file.exists():
        assert error is None, f"unexpected {error!r}"
        assert body.endswith(b"data: [DONE]\n\n")
        events = [json.loads(e[6:]) for e in body.split(b"\n\n") if e.startswith(b"data: {")]
        # Exactly one usage, on the last chunk before [DONE], whichever way the client asked.
        expected_usage = [events[-1]] if translator.usage is not None else []
        assert [e for e in events if e.get("usage")] == expected_usage
        assert all(e["model"] == PUBLIC_MODEL for e in events)
        assert len({(e["id"], e["created"]) for e in events}) == 1
        return
    expected = json.loads(error_file.read_text())
    assert error is not None, "the stream should have failed"
    got = {"status": error.status, "type": error.type, "code": error.code, "message": error.message}
    assert got == {**got, **expected}
    assert b"[DONE]" not in body, "a failed stream must not look complete"


def check_request(adapter: Adapter, provider: str, case: str) -> Any:
    folder = FIXTURES / provider
    body = json.loads((folder / f"{case}.request.json").read_text())
    req = adapter.build_request(body, UPSTREAM_MODEL, body.get("stream") is True)
    check(folder / f"{case}.upstream.json", as_json(json.loads(req.body)))
    return req


def check_response(adapter: Adapter, provider: str, case: str) -> None:
    folder = FIXTURES / provider
    completion = adapter.parse_response((folder / f"{case}.response.json").read_bytes(), PUBLIC_MODEL)
    check(folder / f"{case}.expected.json", as_json(json.loads(completion.body)))
    check(folder / f"{case}.usage.json", usage_json(completion.usage))

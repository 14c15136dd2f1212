"""The one golden-file runner for every provider adapter: fixtures/<provider>/, one folder each.

For each case in a folder:
  <case>.request.json                the client's OpenAI body            -> <case>.upstream.json
                                     (the upstream body; "stream" in the client body picks the URL)
  <case>.response.json               a whole upstream answer             -> <case>.expected.json
  <case>.sse                         an upstream stream                  -> <case>.expected.sse and
                                     <case>.include_usage.expected.sse (the client's bytes without and
                                     with stream_options.include_usage), the same when the stream is
                                     split at any byte
  <case>.usage.json                  the Usage the answer or stream ends with (null for none)
  <case>.error.json                  the stream must fail with this error (status, type, code, message);
                                     the expected bytes are those relayed before it
A case without its expected files fails, and so does a file that belongs to no case. Upstream bodies
name the model `chat-model`; the client must see `acme:chat-model`. Set GOLDEN_UPDATE=1 to write
missing expected files from the code's output (never to overwrite one); review them before use.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import UpstreamError
from gateway.providers.base import Adapter, StreamTranslator, Usage
from gateway.upstream.sse import Decoder

FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC_MODEL = "acme:chat-model"
UPSTREAM_MODEL = "chat-model"
CLOCK = 1700000000.0
STREAM_OUTPUTS = ((".expected.sse", False), (".include_usage.expected.sse", True))
# Each output file and the inputs it may belong to; longer suffixes first, as they end like shorter ones.
OUTPUTS = {
    ".include_usage.expected.sse": (".sse",),
    ".expected.sse": (".sse",),
    ".error.json": (".sse",),
    ".usage.json": (".sse", ".response.json"),
    ".upstream.json": (".request.json",),
    ".expected.json": (".response.json",),
}
INPUTS = (".sse", ".request.json", ".response.json")


def pin(adapter: Adapter) -> Adapter:
    """Fix the adapter's clock and made-up ids, so its output can be compared byte for byte."""
    counter = iter(range(1, 10_000))
    adapter.clock = lambda: CLOCK
    adapter.new_id = lambda: f"id{next(counter):04d}"
    return adapter


@dataclass(frozen=True)
class Outcome:
    """What a stream gave the client: its bytes, the translator it went through, and the error it raised."""

    body: bytes
    translator: StreamTranslator
    error: UpstreamError | None

    @property
    def usage(self) -> Usage | None:
        return self.translator.usage

    @property
    def error_fields(self) -> dict[str, Any] | None:
        e = self.error
        return (
            None if e is None else {"status": e.status, "type": e.type, "code": e.code, "message": e.message}
        )


def run_stream(adapter: Adapter, raw: bytes, client_usage: bool, split_at: int | None = None) -> Outcome:
    """Feed raw upstream bytes (in two reads when split_at is given) through the decoder and a fresh
    translator, as the relay does."""
    translator = adapter.translator(PUBLIC_MODEL, UPSTREAM_MODEL, client_usage)
    reads = [raw] if split_at is None else [raw[:split_at], raw[split_at:]]
    decoder, out, error = Decoder(), [], None
    try:
        for read in reads:
            for event in decoder.feed(read):
                out += translator.feed(event)
        for event in decoder.flush():
            out += translator.feed(event)
        out += translator.finish()
    except UpstreamError as exc:
        error = exc
    return Outcome(b"".join(out), translator, error)


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


@dataclass(frozen=True)
class Golden:
    """The golden cases of one folder, each run through a fresh, pinned adapter from make_adapter."""

    folder: Path
    make_adapter: Callable[[], Adapter]

    @classmethod
    def of(cls, provider: str, make_adapter: Callable[[], Adapter]) -> Golden:
        return cls(FIXTURES / provider, make_adapter)

    def adapter(self) -> Adapter:
        return pin(self.make_adapter())

    def cases(self, suffix: str) -> list[str]:
        """Return the names of the cases with an input file ending in suffix."""
        return sorted(
            p.name[: -len(suffix)]
            for p in self.folder.glob(f"*{suffix}")
            if suffix != ".sse" or not p.name.endswith(".expected.sse")
        )

    def stream_params(self) -> list[Any]:
        """Return (case, suffix, client_usage) for both outputs of every stream, present or not."""
        return [
            pytest.param(
                case, suffix, client_usage, id=f"{case}-{'include_usage' if client_usage else 'no_usage'}"
            )
            for case in self.cases(".sse")
            for suffix, client_usage in STREAM_OUTPUTS
        ]

    def orphans(self) -> list[str]:
        """Return the files that belong to no case: a misnamed input would otherwise never run."""
        found = []
        for path in sorted(self.folder.iterdir()):
            suffix = next((s for s in OUTPUTS if path.name.endswith(s)), None)
            if suffix is None:
                if not path.name.endswith(INPUTS):
                    found.append(path.name)
            elif not any((self.folder / (path.name[: -len(suffix)] + s)).exists() for s in OUTPUTS[suffix]):
                found.append(path.name)
        return found

    def check_stream(self, case: str, suffix: str, client_usage: bool) -> None:
        raw = (self.folder / f"{case}.sse").read_bytes()
        got = run_stream(self.adapter(), raw, client_usage)
        check(self.folder / f"{case}{suffix}", got.body.decode())
        check(self.folder / f"{case}.usage.json", usage_json(got.usage))
        error_file = self.folder / f"{case}.error.json"
        if error_file.exists():
            expected = json.loads(error_file.read_text())
            assert got.error is not None, "the stream should have failed"
            assert got.error_fields == {**got.error_fields, **expected}
            assert b"[DONE]" not in got.body, "a failed stream must not look complete"
            return
        assert got.error is None, f"unexpected {got.error!r}"
        assert got.body.endswith(b"data: [DONE]\n\n")
        events = [json.loads(e[6:]) for e in got.body.split(b"\n\n") if e.startswith(b"data: {")]
        # Exactly one usage, on the last chunk before [DONE], whichever way the client asked.
        expected_usage = [events[-1]] if got.usage is not None else []
        assert [e for e in events if e.get("usage")] == expected_usage
        assert all(e["model"] == PUBLIC_MODEL for e in events)
        assert len({(e["id"], e["created"]) for e in events}) == 1

    def check_stream_split(self, case: str) -> None:
        """Feed the stream split at every byte offset: the client must get what the whole gives."""
        raw = (self.folder / f"{case}.sse").read_bytes()
        whole = run_stream(self.adapter(), raw, client_usage=True)
        for cut in range(1, len(raw)):
            got = run_stream(self.adapter(), raw, client_usage=True, split_at=cut)
            assert (got.body, got.usage, got.error_fields) == (whole.body, whole.usage, whole.error_fields), (
                f"split at byte {cut}"
            )

    def check_request(self, case: str) -> Any:
        body = json.loads((self.folder / f"{case}.request.json").read_text())
        req = self.adapter().build_request(body, UPSTREAM_MODEL, body.get("stream") is True)
        check(self.folder / f"{case}.upstream.json", as_json(json.loads(req.body)))
        return req

    def check_response(self, case: str) -> None:
        raw = (self.folder / f"{case}.response.json").read_bytes()
        completion = self.adapter().parse_response(raw, PUBLIC_MODEL)
        check(self.folder / f"{case}.expected.json", as_json(json.loads(completion.body)))
        check(self.folder / f"{case}.usage.json", usage_json(completion.usage))

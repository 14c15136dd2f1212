"""The fault matrix: each way an upstream can fail, streamed and whole, through a live gateway.

A real fake upstream on loopback (tests/fakes/fault_upstream.py) fails in the way its model id names.
Every fault is asked for twice: on a model with no fallback, where the client must get the right
error in bounded time, and on a model whose fallback is a healthy provider, where the gateway must
fail over when nothing has reached the client yet, and must not once it has. Each case checks the
answer, how long it took, the upstream requests made, and the one usage row with its status and cost.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from sqlalchemy import Engine, create_engine, select

from gateway.store.tables import holds, usage_records
from tests.fakes.fault_upstream import FAULTS, FaultUpstream
from tests.fakes.gateway_server import GatewayServer, free_port, run_gateway, store_url
from tests.fakes.sse_client import open_stream

CONNECT, FIRST_BYTE, IDLE, TOTAL = 0.5, 1.0, 0.6, 2.5
SLACK = 1.5  # scheduling on a busy CI machine; a timeout that did not work takes SILENCE (10 s)
FALLBACK = "good:ok"
FAULTY_COST = 10 * 1 + 5 * 2  # the fake's usage at the faulty models' prices, in micro-USD
FALLBACK_COST = 10 * 3 + 5 * 4


def _config(upstream_url: str, blackhole: int) -> str:
    timeouts = (
        f"connect_timeout = {CONNECT}\nfirst_byte_timeout = {FIRST_BYTE}\n"
        f"idle_timeout = {IDLE}\ntotal_timeout = {TOTAL}\n"
        "cooldown = 0\n"  # every case finds the faulty channel ready, whatever came before
    )
    lines = [f'[providers.flaky]\nbase_url = "{upstream_url}"\napi_key = "sk-flaky"\n{timeouts}']
    for fault in FAULTS:
        lines.append(f"[providers.flaky.models.{fault}]\ninput_price = 1\noutput_price = 2\n")
        lines.append(
            f'[providers.flaky.models.{fault}-backed]\nupstream_id = "{fault}"\n'
            f'input_price = 1\noutput_price = 2\nfallbacks = ["{FALLBACK}"]\n'
        )
    # Nothing listens on the dead provider's port: every connection is refused.
    lines.append(f'[providers.dead]\nbase_url = "http://127.0.0.1:{free_port()}/v1"\n{timeouts}')
    lines.append("[providers.dead.models.refused]\ninput_price = 1\noutput_price = 2\n")
    lines.append(
        f'[providers.dead.models.refused-backed]\nupstream_id = "refused"\nfallbacks = ["{FALLBACK}"]\n'
    )
    # The blackhole's accept queue is full: a connection is never accepted, nor refused.
    lines.append(f'[providers.blackhole]\nbase_url = "http://127.0.0.1:{blackhole}/v1"\n{timeouts}')
    lines.append("[providers.blackhole.models.connect-timeout]\n")
    lines.append(f'[providers.blackhole.models.connect-timeout-backed]\nfallbacks = ["{FALLBACK}"]\n')
    # Two channels: a dead one that nearly always comes first (weight 100), and a healthy one.
    dead = free_port()
    for name, cooldown in (("pair", 30), ("pair-nocool", 0)):
        lines.append(f"[providers.{name}]\nconnect_timeout = {CONNECT}\ncooldown = {cooldown}\n")
        lines.append(
            f'[[providers.{name}.channels]]\nname = "down"\nbase_url = "http://127.0.0.1:{dead}/v1"\n'
        )
        lines.append(
            f'weight = 100\n[[providers.{name}.channels]]\nname = "up"\nbase_url = "{upstream_url}"\n'
        )
        lines.append(f"[providers.{name}.models.ok]\n")
    lines.append(f'[providers.good]\nbase_url = "{upstream_url}"\napi_key = "sk-good"\n')
    lines.append("[providers.good.models.ok]\ninput_price = 3\noutput_price = 4\n")
    return "\n".join(lines)


@dataclass(frozen=True)
class Live:
    gateway: GatewayServer
    upstream: FaultUpstream
    engine: Engine

    def row(self, request_id: str) -> Any:
        deadline = time.monotonic() + 5
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(usage_records).where(usage_records.c.request_id == request_id)
                ).all()
                held = conn.execute(select(holds).where(holds.c.request_id == request_id)).all()
            if rows or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert len(rows) == 1, f"{len(rows)} usage rows for {request_id}"
        assert held == [], "a hold outlived its request"
        return rows[0]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultUpstream]:
    with FaultUpstream() as fake:
        yield fake


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A loopback port whose connections time out: a backlog of 0, filled by one connection never
    accepted, so Linux drops every further SYN (only loopback; no unroutable address needed)."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield listener.getsockname()[1]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, upstream: FaultUpstream, blackhole: int, tmp_path_factory
) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp(f"faults-{request.param}")
    with (
        store_url(request.param, workdir) as url,
        run_gateway(workdir, url, extra_toml=_config(upstream.url, blackhole)) as gateway,
    ):
        engine = create_engine(url)
        try:
            yield Live(gateway, upstream, engine)
        finally:
            engine.dispose()


@dataclass(frozen=True)
class Expect:
    """What a client gets when nothing can fail over: a status and code, or a 200 with an in-band error."""

    status: int
    code: str | None  # the error's code; None: a 200 whose stream ends well
    seconds: float = 0.0  # the timeout the answer waits for, if any
    in_band: bool = False  # the error comes as an event after content (streams only)


# Before the first byte: an HTTP status. Whole answers have no first byte until they are complete.
BEFORE = {
    "refused": Expect(502, "upstream_connection_error"),
    "connect-timeout": Expect(504, "upstream_timeout", CONNECT),
    "hang": Expect(504, "upstream_timeout", FIRST_BYTE),
    "status-500": Expect(500, "fake_failure"),
    "status-429": Expect(429, "fake_failure"),
    "status-401": Expect(502, "upstream_auth_failed"),
    "invalid-json": Expect(502, "bad_upstream_response"),
    "error-first": Expect(502, "fake_failure"),
}
WHOLE = {
    **BEFORE,
    "cut-mid-line": Expect(502, "upstream_connection_error"),
    "no-done": Expect(502, "upstream_connection_error"),
    "stall": Expect(504, "upstream_timeout", IDLE),
    "error-event": Expect(502, "fake_failure"),
    "drip": Expect(504, "upstream_timeout", TOTAL),
}
STREAMED = {
    **BEFORE,
    "cut-mid-line": Expect(200, "upstream_connection_error", in_band=True),
    "no-done": Expect(200, None),  # the answer was finished: the gateway ends it with [DONE] itself
    "stall": Expect(200, "upstream_timeout", IDLE, in_band=True),
    "error-event": Expect(200, "fake_failure", in_band=True),
    "drip": Expect(200, "upstream_timeout", TOTAL, in_band=True),
}
CASES = [(f, False) for f in WHOLE] + [(f, True) for f in STREAMED]
IDS = [f"{f}-{'stream' if s else 'whole'}" for f, s in CASES]


def _send(live: Live, model: str, stream: bool) -> tuple[int, dict[str, str], Any, float]:
    """Return status, headers, and the JSON body or the stream's payloads, and the seconds taken."""
    request_id = "fault-" + uuid.uuid4().hex[:12]
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}], "stream": stream}
    headers = {"X-Request-Id": request_id}
    started = time.monotonic()
    if stream:
        answer = open_stream(live.gateway, body, headers=headers, timeout=20)
        took = time.monotonic() - started
        return answer.status, dict(answer.headers), answer.payloads or answer.raw, took
    resp = requests.post(
        live.gateway.api_base + "/chat/completions",
        json=body,
        headers={**live.gateway.headers, **headers},
        timeout=20,
    )
    return resp.status_code, dict(resp.headers), resp.json(), time.monotonic() - started


def _provider(fault: str) -> str:
    return {"refused": "dead", "connect-timeout": "blackhole"}.get(fault, "flaky")


@pytest.mark.parametrize(
    ("fault", "stream"), CASES, ids=[f"{f}-{'stream' if s else 'whole'}" for f, s in CASES]
)
def test_a_fault_with_nowhere_to_fail_over_gets_its_error(live, fault, stream):
    expect = (STREAMED if stream else WHOLE)[fault]
    model = f"{_provider(fault)}:{fault}"
    before = live.upstream.count(fault)
    status, headers, answer, took = _send(live, model, stream)

    assert status == expect.status, answer
    assert expect.seconds <= took < expect.seconds + SLACK, f"took {took:.2f} s"
    assert (headers["X-Gateway-Model"], headers["X-Gateway-Attempts"]) == (model, "1")
    if fault in FAULTS:  # the others never reach the fake upstream
        assert live.upstream.count(fault) == before + 1, "one request upstream, no retry"
    row = live.row(headers["X-Request-Id"])
    assert (row.model, row.status) == (model, expect.status)
    if expect.in_band:
        # Content had reached the client: the error is the last event before the end, no [DONE].
        assert json.loads(answer[-1])["error"]["code"] == expect.code
        assert b"fine" in b"".join(answer[:-1]) and b"[DONE]" not in answer
        assert row.outcome == ("timeout" if expect.code == "upstream_timeout" else "upstream_error")
        assert row.cost_micros > 0 and row.estimated, "billed for what was relayed"
    elif expect.code is None:
        assert answer[-1] == b"[DONE]" and b"fine" in b"".join(answer)
        assert (row.outcome, row.cost_micros, row.estimated) == ("ok", FAULTY_COST, False)
    else:
        error = answer["error"] if isinstance(answer, dict) else json.loads(answer)["error"]
        assert error["code"] == expect.code
        assert "sk-flaky" not in json.dumps(error) and "127.0.0.1" not in json.dumps(error)
        assert row.outcome == ("timeout" if status == 504 else "upstream_error")
        assert row.cost_micros == 0, "nothing reached the client: nothing is billed"
        if fault == "status-429":
            assert headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("fault", "stream"), CASES, ids=[f"{f}-{'stream' if s else 'whole'}" for f, s in CASES]
)
def test_a_fault_fails_over_to_the_fallback_only_before_the_first_byte(live, fault, stream):
    expect = (STREAMED if stream else WHOLE)[fault]
    model = f"{_provider(fault)}:{fault}-backed"
    before, fallbacks_before = live.upstream.count(fault), live.upstream.count("ok")
    status, headers, answer, took = _send(live, model, stream)

    assert expect.seconds <= took < expect.seconds + SLACK, f"took {took:.2f} s"
    if fault in FAULTS:  # the others never reach the fake upstream
        assert live.upstream.count(fault) == before + 1
    row = live.row(headers["X-Request-Id"])
    if expect.in_band or expect.code is None:
        # The client already had content from the first model: no second answer is spliced in.
        assert (headers["X-Gateway-Model"], headers["X-Gateway-Attempts"]) == (model, "1")
        assert live.upstream.count("ok") == fallbacks_before
        assert (status, row.model, row.status) == (200, model, 200)
        return
    assert status == 200, answer
    assert (headers["X-Gateway-Model"], headers["X-Gateway-Attempts"]) == (FALLBACK, "2")
    assert live.upstream.count("ok") == fallbacks_before + 1
    text = answer["choices"][0]["message"]["content"] if not stream else b"".join(answer).decode()
    assert "fine" in text
    if stream:
        assert answer[-1] == b"[DONE]" and all(json.loads(p)["model"] == FALLBACK for p in answer[:-1])
    else:
        assert answer["model"] == FALLBACK
    # One row, for the model that answered, at its price.
    assert (row.model, row.status, row.outcome) == (FALLBACK, 200, "ok")
    assert (row.cost_micros, row.estimated) == (FALLBACK_COST, False)


def test_a_failing_channel_cools_down_and_the_request_is_retried_on_the_other(live):
    answers = [_send(live, "pair:ok", stream=i % 2 == 1) for i in range(6)]
    assert [status for status, *_ in answers] == [200] * 6
    attempts = [headers["X-Gateway-Attempts"] for _, headers, _, _ in answers]
    # The dead channel is tried once, fails over to the live one, then sits out its 30 s cooldown.
    assert attempts.count("2") == 1 and attempts.count("1") == 5, attempts
    assert {headers["X-Gateway-Model"] for _, headers, _, _ in answers} == {"pair:ok"}
    for _, headers, _, _ in answers:
        row = live.row(headers["X-Request-Id"])
        assert (row.status, row.outcome, row.model) == (200, "ok", "pair:ok")


def test_without_a_cooldown_the_failing_channel_is_tried_again_and_again(live):
    answers = [_send(live, "pair-nocool:ok", stream=False) for _ in range(6)]
    assert [status for status, *_ in answers] == [200] * 6
    attempts = [headers["X-Gateway-Attempts"] for _, headers, _, _ in answers]
    assert attempts.count("2") >= 4, attempts  # weight 100 to 1: the dead channel nearly always first

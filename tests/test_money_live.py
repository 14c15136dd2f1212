"""Money under a live gateway: a stream outliving hold_timeout, and a client that stops reading.

The hold keeper refreshes the holds of requests that still run, so the sweep (of the worker
itself, or `gateway holds sweep` from another process) leaves them; a client that reads nothing
for write_timeout is cut and billed for what was relayed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, func, select

from gateway.store.tables import holds, usage_records
from tests.fakes.gateway_server import OUTPUT_PRICE, GatewayServer, run_gateway, store_url
from tests.fakes.upstream import FLOOD_CHUNKS, FakeUpstream

HOLD_TIMEOUT = 2.0
WRITE_TIMEOUT = 1.0
DRAIN_TIMEOUT = 10.0  # generous: a loaded test machine must not turn the provider's count into a guess
LONG_STREAM_CHUNKS = 100  # the slow model's 50 ms a chunk: 5 s, well past HOLD_TIMEOUT


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(request, upstream, tmp_path_factory) -> Iterator[tuple[GatewayServer, Any]]:
    workdir = tmp_path_factory.mktemp(f"money-{request.param}")
    env = {
        "GATEWAY_HOLD_TIMEOUT": str(HOLD_TIMEOUT),
        "GATEWAY_WRITE_TIMEOUT": str(WRITE_TIMEOUT),
        "GATEWAY_DRAIN_TIMEOUT": str(DRAIN_TIMEOUT),
    }
    with store_url(request.param, workdir) as url, run_gateway(workdir, url, upstream.url, env=env) as gw:
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
        try:
            yield gw, engine
        finally:
            engine.dispose()


def usage_row(engine, request_id: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            rows = conn.execute(select(usage_records).where(usage_records.c.request_id == request_id)).all()
        if rows or time.monotonic() > deadline:
            assert len(rows) == 1, f"{len(rows)} usage rows for {request_id}"
            return rows[0]
        time.sleep(0.05)


def test_a_stream_running_past_hold_timeout_is_billed_in_full(gateway):
    gw, engine = gateway
    stop = threading.Event()

    def sweep_meanwhile() -> None:
        # Both sweeps: the worker's own (it runs after a settlement) and the CLI's, another process.
        while not stop.wait(0.4):
            requests.post(
                gw.api_base + "/chat/completions",
                headers=gw.headers,
                json={"model": "mock:echo", "messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            gw.cli("holds", "sweep")

    sweeper = threading.Thread(target=sweep_meanwhile)
    body = {
        "model": "fake:slow",
        "stream": True,
        "max_tokens": LONG_STREAM_CHUNKS,
        "messages": [{"role": "user", "content": "long " + uuid.uuid4().hex}],
    }
    with requests.post(
        gw.api_base + "/chat/completions", headers=gw.headers, json=body, stream=True, timeout=30
    ) as resp:
        request_id = resp.headers["X-Request-Id"]
        sweeper.start()
        try:
            started = time.monotonic()
            lines = [line for line in resp.iter_lines() if line]
            took = time.monotonic() - started
        finally:
            stop.set()
            sweeper.join()
    assert took > HOLD_TIMEOUT * 2, "the stream did not outlive hold_timeout; the test proves nothing"
    assert lines[-1] == b"data: [DONE]"
    row = usage_row(engine, request_id, 5)
    assert row.outcome == "ok", "a running stream was swept as abandoned"
    assert row.estimated is False and row.completion_tokens == LONG_STREAM_CHUNKS
    assert row.cost_micros >= LONG_STREAM_CHUNKS * OUTPUT_PRICE


def test_a_client_that_stops_reading_is_cut_and_billed(gateway, upstream):
    gw, engine = gateway
    tag = uuid.uuid4().hex
    payload = json.dumps(
        {"model": "fake:flood", "stream": True, "messages": [{"role": "user", "content": tag}]}
    ).encode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gw.port))
    try:
        head = (
            f"POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {gw.headers['Authorization']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        )
        sock.sendall(head.encode() + payload)
        first = sock.recv(4096)  # the headers: then this client reads nothing more
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        request_id = next(
            line.split(b":", 1)[1].strip().decode()
            for line in first.split(b"\r\n")
            if line.lower().startswith(b"x-request-id:")
        )
        ex = upstream.find(tag)
        row = usage_row(engine, request_id, WRITE_TIMEOUT + 10)
    finally:
        sock.close()
    assert row.outcome == "client_disconnected"
    assert row.completion_tokens > 0 and row.cost_micros > 0, "what was relayed went unbilled"
    # The flood ends within drain_timeout of the cut: the gateway read on to its usage and billed it.
    # It may close as soon as the usage came, before the fake's [DONE]: "client_gone" then too.
    assert ex.wait_done(5) and ex.outcome in ("complete", "client_gone")
    assert row.estimated is False and row.completion_tokens == FLOOD_CHUNKS
    with engine.connect() as conn:
        left = conn.execute(
            select(func.count()).select_from(holds).where(holds.c.request_id == request_id)
        ).scalar_one()
    assert left == 0


def test_a_client_gone_before_the_usage_event_is_billed_the_providers_count(gateway, upstream):
    gw, engine = gateway
    tag = uuid.uuid4().hex
    body = {
        "model": "fake:slow",
        "stream": True,
        "max_tokens": 20,  # 1 s of chunks: the usage event comes well within drain_timeout
        "messages": [{"role": "user", "content": tag}],
    }
    with requests.post(
        gw.api_base + "/chat/completions", headers=gw.headers, json=body, stream=True, timeout=30
    ) as resp:
        request_id = resp.headers["X-Request-Id"]
        lines = resp.iter_lines()
        for _ in range(3):
            next(lines)
    # The client hung up after three chunks.
    ex = upstream.find(tag)
    # The gateway stops reading once the usage came, so the fake may find it gone at its [DONE];
    # that it read on to the usage shows in the row below: the provider's count, not an estimate.
    assert ex.wait_done(5) and ex.outcome in ("complete", "client_gone")
    row = usage_row(engine, request_id, 5)
    assert row.outcome == "client_disconnected"
    assert row.estimated is False, "an estimate was billed though the provider's usage came"
    assert (row.prompt_tokens, row.completion_tokens) == (
        ex.reported_usage["prompt_tokens"],
        ex.reported_usage["completion_tokens"],
    )

"""Two gateway processes sharing one PostgreSQL cannot overspend one key's balance.

Each gateway gets 50 concurrent streamed requests on the same key, whose balance covers exactly N
worst-case requests. The fake upstream streams slowly, so every reservation is made while the
others are still in flight and no settlement frees money early: at most N can be accepted.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, func, select

from gateway.store.tables import holds, usage_records, users
from tests.fakes.gateway_server import run_gateway, store_url
from tests.fakes.upstream import FakeUpstream

PER_GATEWAY = 50
AFFORDABLE = 30  # N
MAX_TOKENS = 40  # the slow fake model streams one chunk per token, 50 ms apart: 2 s a request
EMAIL = "race@example.com"


def worst_case_micros(body: bytes) -> int:
    # Prices of the fake provider: 1 micro-USD a prompt token, 2 a completion token; a body byte
    # counts as one prompt token in the reservation.
    return len(body) * 1 + MAX_TOKENS * 2


def send(url: str, key: str, body: bytes) -> tuple[int, bytes]:
    resp = requests.post(
        url,
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=60,
    )
    return resp.status_code, resp.content


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_two_gateways_never_overspend_one_balance(tmp_path, kind):
    body = json.dumps(
        {
            "model": "fake:slow",
            "stream": True,
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": "go"}],
        }
    ).encode()
    balance = AFFORDABLE * worst_case_micros(body)
    with FakeUpstream() as fake, store_url(kind, tmp_path) as db_url:
        with run_gateway(tmp_path, db_url, fake.url, workers=2, threads=32) as gw_a:
            with run_gateway(tmp_path, db_url, fake.url, workers=2, threads=32, init_db=False) as gw_b:
                gw_a.cli("users", "create", EMAIL)
                gw_a.cli("credit", EMAIL, f"{balance / 1_000_000:.6f}", "--note", "race")
                key = gw_a.create_key("--user", EMAIL, "--name", "race")
                engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg2://", 1))
                lowest, stop = [balance], threading.Event()

                def watch() -> None:  # the balance must never dip below zero, not even for a moment
                    while not stop.is_set():
                        with engine.connect() as conn:
                            row = conn.execute(select(users).where(users.c.email == EMAIL)).one()
                        lowest[0] = min(lowest[0], row.balance_micros, row.balance_micros - row.held_micros)
                        time.sleep(0.02)

                watcher = threading.Thread(target=watch, daemon=True)
                watcher.start()
                urls = [gw_a.api_base + "/chat/completions"] * PER_GATEWAY
                urls += [gw_b.api_base + "/chat/completions"] * PER_GATEWAY
                try:
                    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
                        results = list(pool.map(lambda u: send(u, key, body), urls))
                finally:
                    stop.set()
                    watcher.join(timeout=5)

                statuses = [status for status, _ in results]
                assert set(statuses) <= {200, 429}, [c[:300] for s, c in results if s not in (200, 429)]
                accepted = statuses.count(200)
                assert 0 < accepted <= AFFORDABLE
                assert all(content.rstrip().endswith(b"data: [DONE]") for s, content in results if s == 200)
                with engine.connect() as conn:
                    user = conn.execute(select(users).where(users.c.email == EMAIL)).one()
                    rows = conn.execute(select(func.count(), func.sum(usage_records.c.cost_micros))).one()
                    left = conn.execute(select(func.count()).select_from(holds)).scalar_one()
                engine.dispose()
    assert lowest[0] >= 0
    assert user.balance_micros >= 0
    assert rows[0] == accepted
    assert balance - user.balance_micros == rows[1]
    assert user.held_micros == 0 and left == 0

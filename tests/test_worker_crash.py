"""A worker killed with SIGKILL mid-stream leaves a hold, and the sweep gives the money back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import requests
from sqlalchemy import create_engine, select

from gateway.store.tables import holds, usage_records, users
from tests.fakes.gateway_server import run_gateway, store_url
from tests.fakes.upstream import FakeUpstream

HOLD_TIMEOUT = 2.0
EMAIL = "crash@example.com"


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, check=False)
    return [int(pid) for pid in out.stdout.split()]


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_sigkilled_worker_hold_is_swept(tmp_path, kind):
    env = {"GATEWAY_HOLD_TIMEOUT": str(HOLD_TIMEOUT)}
    with FakeUpstream() as fake, store_url(kind, tmp_path) as db_url:
        with run_gateway(tmp_path, db_url, fake.url, workers=1, threads=4, env=env) as gw:
            gw.cli("users", "create", EMAIL)
            gw.cli("credit", EMAIL, "1")
            key = gw.create_key("--user", EMAIL)
            headers = {"Authorization": f"Bearer {key}"}
            body = {
                "model": "fake:slow",
                "stream": True,
                "max_tokens": 300,
                "messages": [{"role": "user", "content": "x"}],
            }
            engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg2://", 1))
            with requests.post(
                gw.api_base + "/chat/completions", json=body, headers=headers, stream=True, timeout=30
            ) as resp:
                request_id = resp.headers["X-Request-Id"]
                next(resp.iter_lines())  # the stream is under way: the hold is in place
                [worker] = worker_pids(gw.process.pid)
                os.kill(worker, signal.SIGKILL)
                try:
                    rest = b"".join(resp.iter_content(None))
                except requests.RequestException:
                    rest = b""
                assert b"[DONE]" not in rest
            with engine.connect() as conn:
                assert conn.execute(select(holds.c.request_id)).scalars().all() == [request_id]
                held = conn.execute(select(users.c.held_micros).where(users.c.email == EMAIL)).scalar_one()
            assert held > 0
            assert wait_for(lambda: worker_pids(gw.process.pid) not in ([], [worker]), 15), "no new worker"
            time.sleep(HOLD_TIMEOUT + 0.5)
            # Any request lets the new worker sweep; no cron is involved.
            ok = requests.post(
                gw.api_base + "/chat/completions",
                headers=headers,
                timeout=30,
                json={"model": "mock:echo", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert ok.status_code == 200
            with engine.connect() as conn:
                user = conn.execute(select(users).where(users.c.email == EMAIL)).one()
                left = conn.execute(select(holds.c.request_id)).scalars().all()
                row = conn.execute(
                    select(usage_records).where(usage_records.c.request_id == request_id)
                ).one()
            engine.dispose()
    assert left == []
    assert user.held_micros == 0 and user.balance_micros == 1_000_000  # the mock model is free
    assert (row.outcome, row.cost_micros, row.estimated) == ("abandoned", 0, True)
    assert json.loads(ok.content)["choices"][0]["message"]["content"] == "hi"

"""A live gateway whose store is locked by another process: a bounded wait, a 503, nothing lost.

The lock holder is a separate Python process (tests/fakes/lock_holder.py): on SQLite it holds the
file's write lock (BEGIN IMMEDIATE), on PostgreSQL a row lock on the user (SELECT … FOR UPDATE).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from gateway.store.tables import api_keys, holds, usage_records, users
from tests.fakes.gateway_server import run_gateway, store_url

LOCK_TIMEOUT = 1.0
SLACK = 3.0
HOLDER = Path(__file__).parent / "fakes" / "lock_holder.py"
TOML = (
    '[providers.priced]\ntype = "mock"\n[providers.priced.models.echo]\ninput_price = 1\noutput_price = 2\n'
)


@contextmanager
def lock_held(database_url: str, user_id: int) -> Iterator[None]:
    """Run the lock holder until the block ends; it is bounded to 60 s on its own."""
    proc = subprocess.Popen(
        [sys.executable, str(HOLDER), database_url, str(user_id)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield
    finally:
        if proc.stdin:
            proc.stdin.close()  # the holder rolls back and exits on EOF
        proc.wait(10)


def _state(engine, user_id: int) -> tuple[int, int, int, int]:
    with engine.connect() as conn:
        balance, held = conn.execute(
            select(users.c.balance_micros, users.c.held_micros).where(users.c.id == user_id)
        ).one()
        n_holds = conn.execute(select(func.count()).select_from(holds)).scalar_one()
        n_usage = conn.execute(select(func.count()).select_from(usage_records)).scalar_one()
    return balance, held, n_holds, n_usage


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_store_locked_by_another_process_is_a_bounded_503_then_served(tmp_path, kind):
    env = {"GATEWAY_DB_LOCK_TIMEOUT": str(LOCK_TIMEOUT)}
    with store_url(kind, tmp_path) as url, run_gateway(tmp_path, url, env=env, extra_toml=TOML) as gw:
        gw.cli("users", "create", "ada@example.com")
        gw.cli("credit", "ada@example.com", "1")
        secret = gw.create_key("--user", "ada@example.com")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
        try:
            with engine.connect() as conn:
                user_id = conn.execute(select(api_keys.c.user_id).order_by(api_keys.c.id.desc())).first()[0]
            before = _state(engine, user_id)
            chat = {"model": "priced:echo", "messages": [{"role": "user", "content": "Hi"}]}
            message = {**chat, "max_tokens": 20}
            openai_headers = {"Authorization": f"Bearer {secret}"}
            anthropic_headers = {"x-api-key": secret, "anthropic-version": "2023-06-01"}
            with lock_held(url, user_id):
                started = time.monotonic()
                resp = requests.post(
                    gw.api_base + "/chat/completions", headers=openai_headers, json=chat, timeout=30
                )
                elapsed = time.monotonic() - started
                claude = requests.post(
                    gw.api_base + "/messages", headers=anthropic_headers, json=message, timeout=30
                )
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"]["code"] == "service_unavailable"
            assert resp.json()["request_id"] == resp.headers["X-Request-Id"]
            assert LOCK_TIMEOUT * 0.8 <= elapsed < LOCK_TIMEOUT + SLACK, elapsed
            assert claude.status_code == 503, claude.text
            assert claude.json()["type"] == "error"
            assert _state(engine, user_id) == before, "fail closed: nothing held, charged or recorded"
            ok = requests.post(
                gw.api_base + "/chat/completions", headers=openai_headers, json=chat, timeout=30
            )
            assert ok.status_code == 200, ok.text
            balance, held, n_holds, n_usage = _state(engine, user_id)
            assert (held, n_holds, n_usage) == (0, 0, 1), "served once the lock is gone, billed once"
            assert balance < before[0]
        finally:
            engine.dispose()

"""A database lock held by another connection: the request waits a bounded time, then a 503, fail closed.

SQLite's busy_timeout and PostgreSQL's lock_timeout are db_lock_timeout; PostgreSQL's
statement_timeout is db_statement_timeout. Either firing before the upstream call is a 503
service_unavailable in the client's own envelope, with nothing held, charged or recorded.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from gateway import create_app
from gateway.store.tables import holds, usage_records, users
from tests.support.app import PRICED, assert_envelope, base_config, chat, make_account, services

LOCK_TIMEOUT = 0.5
SLACK = 2.0  # a busy CI machine; the old behaviour waited 10 s (SQLite) or forever (PostgreSQL)


@contextmanager
def row_lock(db_url: str, user_id: int) -> Iterator[None]:
    """Hold a write lock on the user's row from a connection of its own (SQLite: the whole file)."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database, isolation_level=None, timeout=0)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE users SET balance_micros = balance_micros WHERE id = ?", (user_id,))
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn, conn.begin() as tx:
            conn.execute(text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": user_id})
            yield
            tx.rollback()
    finally:
        engine.dispose()


def _state(app, user_id: int) -> tuple[int, int, int, int]:
    with services(app).db.session_scope() as conn:
        balance, held = conn.execute(
            select(users.c.balance_micros, users.c.held_micros).where(users.c.id == user_id)
        ).one()
        n_holds = conn.execute(select(func.count()).select_from(holds)).scalar_one()
        n_usage = conn.execute(select(func.count()).select_from(usage_records)).scalar_one()
    return balance, held, n_holds, n_usage


def _messages_body() -> dict:
    return {"model": "priced:echo", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def locked_app(make_app):
    return make_app(providers=PRICED, db_lock_timeout=LOCK_TIMEOUT)


def test_a_locked_store_is_a_bounded_503_on_the_openai_surface(locked_app, db_url):
    account = make_account(locked_app, email="ada@example.com", balance_micros=1_000_000)
    client = locked_app.test_client()
    before = _state(locked_app, account.user_id)
    with row_lock(db_url, account.user_id):
        started = time.monotonic()
        resp = client.post("/api/v1/chat/completions", headers=account.headers, json=chat("priced:echo"))
        elapsed = time.monotonic() - started
    body = assert_envelope(resp, 503, "service_unavailable")
    assert "busy" in body["error"]["message"]
    assert resp.headers["Retry-After"] == "1"
    assert LOCK_TIMEOUT * 0.8 <= elapsed < LOCK_TIMEOUT + SLACK, elapsed
    assert _state(locked_app, account.user_id) == before, "fail closed: nothing held, charged or recorded"
    # Once the lock is gone the same client is served and charged once.
    ok = client.post("/api/v1/chat/completions", headers=account.headers, json=chat("priced:echo"))
    assert ok.status_code == 200, ok.get_data(as_text=True)
    balance, held, n_holds, n_usage = _state(locked_app, account.user_id)
    assert (held, n_holds, n_usage) == (0, 0, 1)
    assert balance < before[0]


def test_a_locked_store_is_a_503_in_anthropics_envelope(locked_app, db_url):
    account = make_account(locked_app, email="ada@example.com", balance_micros=1_000_000)
    headers = {"x-api-key": account.secret, "anthropic-version": "2023-06-01"}
    before = _state(locked_app, account.user_id)
    with row_lock(db_url, account.user_id):
        resp = locked_app.test_client().post("/api/v1/messages", headers=headers, json=_messages_body())
    assert resp.status_code == 503, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "overloaded_error"
    assert _state(locked_app, account.user_id) == before


@contextmanager
def app_on(db_url: str, **config) -> Iterator:
    app = create_app(base_config(db_url, **config))
    services(app).db.create_schema()
    try:
        yield app
    finally:
        services(app).db.dispose()


@pytest.mark.postgres
def test_statement_timeout_fires_before_the_upstream_call(pg_schema_url):
    # lock_timeout longer than statement_timeout: the statement's own limit is what fires.
    with app_on(
        pg_schema_url, providers=PRICED, db_lock_timeout=30.0, db_statement_timeout=LOCK_TIMEOUT
    ) as app:
        _statement_timeout_case(app, pg_schema_url)


def _statement_timeout_case(app, db_url: str) -> None:
    account = make_account(app, email="ada@example.com", balance_micros=1_000_000)
    before = _state(app, account.user_id)
    with row_lock(db_url, account.user_id):
        started = time.monotonic()
        resp = app.test_client().post(
            "/api/v1/chat/completions", headers=account.headers, json=chat("priced:echo")
        )
        elapsed = time.monotonic() - started
    assert_envelope(resp, 503, "service_unavailable")
    assert elapsed < LOCK_TIMEOUT + SLACK, elapsed
    assert _state(app, account.user_id) == before


@pytest.mark.postgres
def test_every_pooled_postgres_connection_carries_both_timeouts(pg_schema_url):
    with app_on(pg_schema_url, db_lock_timeout=1.5, db_statement_timeout=12.0) as app:
        for _ in range(3):  # the pool's reset on return must not undo them
            with services(app).db.session_scope() as conn:
                lock = conn.exec_driver_sql("SHOW lock_timeout").scalar_one()
                statement = conn.exec_driver_sql("SHOW statement_timeout").scalar_one()
            assert (lock, statement) == ("1500ms", "12s")


def test_sqlite_waits_db_lock_timeout_for_a_writer(tmp_path):
    with app_on(f"sqlite:///{tmp_path}/g.db", db_lock_timeout=2.5) as app:
        with services(app).db.session_scope() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 2500

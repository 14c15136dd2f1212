"""Shared fixtures: every storage test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from GATEWAY_TEST_POSTGRES_URL (CI sets it). Each test gets its own schema, so
tests never see each other's rows. Without the variable the PostgreSQL cases are skipped with a
loud reason locally, and fail in CI (CI=true), so they cannot go missing silently.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from gateway import create_app
from gateway.blueprints.services import Services
from gateway.clock import SYSTEM, Clock
from gateway.store.keys import create_key
from gateway.store.users import create_user, local_user_id

PG_ENV = "GATEWAY_TEST_POSTGRES_URL"


def postgres_base_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{PG_ENV} is not set in CI: the PostgreSQL tests must run there")
    return None


def _with_schema(url: str, schema: str) -> str:
    from gateway.config.settings import normalise_database_url

    sep = "&" if "?" in url else "?"
    return normalise_database_url(url) + f"{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(f"PostgreSQL case skipped: set {PG_ENV} (make test does) to run it")
    from gateway.config.settings import normalise_database_url

    schema = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(normalise_database_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield _with_schema(base, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The store under test: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gateway.db"
    return request.getfixturevalue("pg_schema_url")


def base_config(db_url: str, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"database_url": db_url, "testing": True, "key_cache_ttl": 0.0}
    config.update(extra)
    return config


@pytest.fixture
def make_app(db_url: str, monkeypatch: pytest.MonkeyPatch):
    """Build apps on the store under test; keyword arguments are laid over the test config."""
    monkeypatch.delenv("GATEWAY_CONFIG", raising=False)
    monkeypatch.chdir(os.path.dirname(__file__))  # no stray ./gateway.toml
    apps = []

    def build(clock: Clock = SYSTEM, **extra: Any):
        app = create_app(base_config(db_url, **extra), clock=clock)
        app.extensions["gateway"].db.create_schema()
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["gateway"].db.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def services(app) -> Services:
    return app.extensions["gateway"]


@dataclass(frozen=True)
class Account:
    user_id: int
    key_id: int
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


def make_account(
    app, *, email: str | None = None, balance_micros: int = 0, unlimited: bool = False, **key_options: Any
) -> Account:
    """Create a user (or the local unlimited one) with one key."""
    from sqlalchemy import update

    from gateway.store.tables import users

    with services(app).db.session_scope() as conn:
        if email is None:
            user_id = local_user_id(conn)
        else:
            user_id = create_user(conn, email, unlimited=unlimited)
            conn.execute(update(users).where(users.c.id == user_id).values(balance_micros=balance_micros))
        key_id, minted = create_key(conn, user_id, **key_options)
    return Account(user_id, key_id, minted.secret)


@pytest.fixture
def account(app) -> Account:
    """A key of the built-in unlimited local user."""
    return make_account(app)


def chat(model: str = "mock:echo", content: str = "Hi there", **extra: Any) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return body


class FixedClock:
    """A clock whose wall time stands still (monotonic time still runs), for tests about windows."""

    def __init__(self, now: datetime) -> None:
        self.wall = now

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return time.monotonic()

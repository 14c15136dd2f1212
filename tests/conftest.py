"""Shared fixtures: every storage test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from GATEWAY_TEST_POSTGRES_URL (CI sets it). Each test gets its own schema, so
tests never see each other's rows. Without the variable the PostgreSQL cases are skipped with a
loud reason locally, and fail in CI (CI=true), so they cannot go missing silently.

A test module that starts processes (gunicorn through tests/fakes/gateway_server.py, nginx, a browser,
anything through subprocess) is marked live here, whole: `make test-fast` leaves those out. Helpers
live in tests/support/; this file holds fixtures and hooks only.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from typing import Any

import pytest

from gateway import create_app
from gateway.clock import SYSTEM, Clock
from tests.support.app import Account, base_config, make_account
from tests.support.postgres import fresh_schema

# Importing one of these (or anything from one) makes a test module live.
PROCESS_STARTERS = ("subprocess", "multiprocessing", "selenium", "tests.fakes.gateway_server")


def _starts_processes(module: object) -> bool:
    for value in vars(module).values():
        name = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", None)
        if isinstance(name, str) and any(name == s or name.startswith(s + ".") for s in PROCESS_STARTERS):
            return True
    return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark live every test of a module that starts processes, so none can be left unmarked."""
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and _starts_processes(module):
            item.add_marker(pytest.mark.live)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    with fresh_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """The store under test: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gateway.db"
    return request.getfixturevalue("pg_schema_url")


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


@pytest.fixture
def account(app) -> Account:
    """A key of the built-in unlimited local user."""
    return make_account(app)

"""The PostgreSQL the tests run on: GATEWAY_TEST_POSTGRES_URL, and a fresh schema per use."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

from gateway.config.settings import normalise_database_url

PG_ENV = "GATEWAY_TEST_POSTGRES_URL"


def postgres_base_url() -> str | None:
    """Return the test server's URL; None (a local skip) without one, a failure in CI."""
    url = os.environ.get(PG_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{PG_ENV} is not set in CI: the PostgreSQL tests must run there")
    return None


def require_postgres() -> str:
    """Return the test server's URL, or skip the test loudly when there is none."""
    base = postgres_base_url()
    if base is None:
        pytest.skip(f"PostgreSQL case skipped: set {PG_ENV} (make test does) to run it")
    return base


@contextmanager
def fresh_schema(prefix: str = "t_") -> Iterator[str]:
    """Yield a URL whose search_path is a new, empty schema, dropped afterwards."""
    base = normalise_database_url(require_postgres())
    schema = prefix + uuid.uuid4().hex[:12]
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in base else "?"
    try:
        yield base + f"{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

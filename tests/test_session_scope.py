"""Database.session_scope: a transaction by default; with autocommit=True, statements alone on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from gateway.store.database import Database


class Boom(Exception):
    pass


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """One pooled connection, so every scope gets the connection the one before gave back."""
    database = Database(db_url, pool_size=1)
    with database.session_scope() as conn:
        conn.execute(text("CREATE TABLE scratch (n INTEGER)"))
    yield database
    database.dispose()


def rows(db: Database) -> list[int]:
    with db.session_scope() as conn:
        return list(conn.execute(text("SELECT n FROM scratch ORDER BY n")).scalars())


def test_an_autocommit_scope_hands_back_a_connection_that_runs_transactions_again(db):
    with db.session_scope(autocommit=True) as conn:
        conn.execute(text("INSERT INTO scratch (n) VALUES (1)"))
    with pytest.raises(Boom):
        with db.session_scope() as conn:
            conn.execute(text("INSERT INTO scratch (n) VALUES (2)"))
            raise Boom
    assert rows(db) == [1]


def test_an_autocommit_scope_that_fails_keeps_its_statements_on_postgresql_only(db):
    with pytest.raises(Boom):
        with db.session_scope(autocommit=True) as conn:
            conn.execute(text("INSERT INTO scratch (n) VALUES (1)"))
            raise Boom
    # SQLite runs its scopes as transactions whatever they ask (its write gate counts on that).
    assert rows(db) == ([1] if db.is_postgres else [])

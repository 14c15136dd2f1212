"""The database engine and transactions: SQLite under var/ by default, PostgreSQL in production."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gateway.errors import ServiceUnavailableError
from gateway.store import migrations
from gateway.store.tables import metadata


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout makes writers queue, not fail.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str, pool_size: int = 5, pool_timeout: float = 30.0) -> Engine:
    """Create an engine; for SQLite files, create the folder and set the pragmas."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=pool_timeout,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=pool_timeout, pool_recycle=1800
    )


class Database:
    """One engine per process; session_scope() is the unit of work."""

    def __init__(self, url: str, pool_size: int = 5, pool_timeout: float = 30.0) -> None:
        self.engine = make_engine(url, pool_size, pool_timeout)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session_scope(self) -> Iterator[Connection]:
        """Run a transaction: commit on success, roll back on error; store failures become 503."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except DBAPIError as exc:
            if exc.connection_invalidated or _is_unreachable(exc):
                raise ServiceUnavailableError("The gateway's database is unreachable.") from exc
            raise
        except PoolTimeoutError as exc:
            # Every pooled connection stayed busy for pool_timeout: overload, not a bug.
            raise ServiceUnavailableError("The gateway is too busy right now; try again shortly.") from exc

    def ping(self) -> None:
        """Run one trivial query; raises when the database cannot be reached."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    def create_schema(self) -> None:
        """Create every table that does not exist yet, then migrate older ones (idempotent)."""
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            migrations.migrate(conn)

    def dispose(self) -> None:
        self.engine.dispose()


def _is_unreachable(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(
        s in text
        for s in (
            "could not connect",
            "connection refused",
            "server closed",
            "terminating connection",
            "unable to open database",
        )
    )

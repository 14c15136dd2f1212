"""The database engine and transactions: SQLite under var/ by default, PostgreSQL in production."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from gateway.errors import ServiceUnavailableError
from gateway.store import migrations
from gateway.store.tables import metadata
from gateway.store.write_gate import WriteGate

# SQLite's "database is locked" (busy_timeout ran out) and PostgreSQL's lock_not_available (55P03,
# lock_timeout) and query_canceled (57014, statement_timeout): another writer held the data too long.
_LOCK_PGCODES = ("55P03", "57014")
_LOCK_TEXTS = ("database is locked", "database table is locked")


@dataclass(frozen=True)
class Timeouts:
    """How long one statement may wait for another writer's lock, and run at all, in seconds.

    None leaves the server's default: SQLite waits 10 s, PostgreSQL forever.
    """

    lock: float | None = None
    statement: float | None = None


def _sqlite_pragmas(timeouts: Timeouts) -> Callable[[Any, Any], None]:
    busy_ms = int(1000 * (10.0 if timeouts.lock is None else timeouts.lock))

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets readers run beside the one writer; busy_timeout makes writers queue, for a while.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return on_connect


def _postgres_timeouts(timeouts: Timeouts) -> Callable[[Any, Any], None]:
    settings = [
        (name, value)
        for name, value in (("lock_timeout", timeouts.lock), ("statement_timeout", timeouts.statement))
        if value is not None
    ]

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Session settings, committed: a SET inside the pool's first (rolled back) transaction
        # would be undone with it.
        cur = dbapi_conn.cursor()
        for name, seconds in settings:
            cur.execute(f"SET {name} = %s", (f"{int(seconds * 1000)}ms",))
        cur.close()
        dbapi_conn.commit()

    return on_connect


def make_engine(
    url: str, pool_size: int = 5, pool_timeout: float = 30.0, timeouts: Timeouts = Timeouts()
) -> Engine:
    """Create an engine; for SQLite files, create the folder; set the pragmas or session timeouts."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": 10.0 if timeouts.lock is None else timeouts.lock,
            },
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=pool_timeout,
        )
        event.listen(engine, "connect", _sqlite_pragmas(timeouts))
        return engine
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_timeout=pool_timeout, pool_recycle=1800
    )
    if parsed.get_backend_name() == "postgresql" and (timeouts.lock or timeouts.statement):
        event.listen(engine, "connect", _postgres_timeouts(timeouts))
    return engine


class Database:
    """One engine per process; session_scope() is the unit of work."""

    def __init__(
        self, url: str, pool_size: int = 5, pool_timeout: float = 30.0, timeouts: Timeouts = Timeouts()
    ) -> None:
        self.engine = make_engine(url, pool_size, pool_timeout, timeouts)
        self.gate: WriteGate | None = None  # SQLite: the writers of this process queue here
        if self.engine.dialect.name == "sqlite":
            self.gate = WriteGate(10.0 if timeouts.lock is None else timeouts.lock)
            event.listen(self.engine, "before_cursor_execute", self.gate.before_execute)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def session_scope(self, autocommit: bool = False) -> Iterator[Connection]:
        """Run a transaction: commit on success, roll back on error; store failures become 503.

        autocommit=True lets each statement commit on its own on PostgreSQL, with no BEGIN and
        COMMIT (two round trips fewer): only for work whose every statement is safe alone, such
        as billing.settle's one statement there. SQLite runs a transaction all the same.
        """
        scope = self.gate.open() if self.gate is not None else None
        try:
            if autocommit and self.is_postgres:
                with self.engine.connect() as conn, _autocommit(conn):
                    yield conn
            else:
                with self.engine.begin() as conn:
                    yield conn
        except DBAPIError as exc:
            if exc.connection_invalidated or _is_unreachable(exc):
                raise ServiceUnavailableError("The gateway's database is unreachable.") from exc
            if _is_lock_wait(exc):
                # Fail closed: nothing was written, so the client may simply retry.
                raise ServiceUnavailableError(
                    "The gateway's database is busy; try again shortly.", headers={"Retry-After": "1"}
                ) from exc
            raise
        except PoolTimeoutError as exc:
            # Every pooled connection stayed busy for pool_timeout: overload, not a bug.
            raise ServiceUnavailableError("The gateway is too busy right now; try again shortly.") from exc
        finally:
            if scope is not None:
                scope.close()  # after the commit or rollback: the next writer of this process goes

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


@contextmanager
def _autocommit(conn: Connection) -> Iterator[None]:
    """Switch psycopg2's autocommit on for one checkout, and off before the pool has it back.

    Set on the driver: SQLAlchemy's isolation_level="AUTOCOMMIT" resets it with a SET of its own,
    a round trip that would give back half of what autocommit saves.
    """
    driver = conn.connection.driver_connection
    assert driver is not None  # a checked-out connection has its driver's
    driver.autocommit = True
    try:
        yield
    finally:
        if not driver.closed:  # an invalidated connection is closed, and never pooled again
            driver.autocommit = False


def _is_lock_wait(exc: DBAPIError) -> bool:
    """Tell whether a statement gave up waiting for a lock or ran past its timeout."""
    if getattr(exc.orig, "pgcode", None) in _LOCK_PGCODES:
        return True
    return any(s in str(exc.orig).lower() for s in _LOCK_TEXTS)


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

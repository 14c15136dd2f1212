"""Bring a database made by an earlier version up to the current schema, at `gateway db init`.

create_all() makes missing tables but never changes an existing one; each step here does one such
change, idempotently (it looks before it acts), so running init again, or on a new database, is safe.
A step that adds a column must also add it to tables.py and schema.sql (test_schema compares them).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, text

from gateway.store import aggregates, changes
from gateway.store.users import LOCAL_USER

Step = Callable[[Connection], None]


def has_column(conn: Connection, table: str, column: str) -> bool:
    """Tell whether a table of the connected database has a column."""
    return any(c["name"] == column for c in inspect(conn).get_columns(table))


def add_column(conn: Connection, table: str, column: str, ddl: str) -> None:
    """Add a column (ddl: its type and default, in SQL both dialects accept) unless it is there."""
    if not has_column(conn, table, column):
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))


def index_usage_by_time(conn: Connection) -> None:
    """The newest rows for everyone, and the retention's deletes, read usage by (created_at, id)."""
    conn.execute(
        text("CREATE INDEX IF NOT EXISTS ix_usage_records_created_at_id ON usage_records (created_at, id)")
    )


def demote_local_user(conn: Connection) -> None:
    """Take admin rights from the built-in local user: earlier versions made its keys admin keys."""
    demoted = conn.execute(
        text("UPDATE users SET is_admin = :no WHERE email = :email AND is_admin = :yes"),
        {"no": False, "yes": True, "email": LOCAL_USER},
    ).rowcount
    if demoted:
        changes.bump(conn)  # running gateways cache the old principal


def add_hold_heartbeat(conn: Connection) -> None:
    """Holds carry the time their worker last said the request still runs (issue 12, item 2)."""
    add_column(conn, "holds", "heartbeat_at", "TIMESTAMP WITH TIME ZONE")


def add_session_generation(conn: Connection) -> None:
    """Give users the counter that sign-out bumps to end their console sessions (issue 12, item 8)."""
    add_column(conn, "users", "session_generation", "INTEGER NOT NULL DEFAULT 0")


# In order; append new steps at the end.
STEPS: list[Step] = [
    demote_local_user,
    add_hold_heartbeat,
    add_session_generation,
    index_usage_by_time,
    aggregates.backfill,
]


def migrate(conn: Connection) -> None:
    """Run every step, in order, in the caller's transaction."""
    for step in STEPS:
        step(conn)

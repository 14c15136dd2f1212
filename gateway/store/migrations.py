"""Bring a database made by an earlier version up to the current schema, at `gateway db init`.

create_all() makes missing tables but never changes an existing one; each step here does one such
change, idempotently (it looks before it acts), so running init again, or on a new database, is safe.
A step that adds a column must also add it to tables.py and schema.sql (test_schema compares them).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Table, inspect, text

from gateway.store import aggregates, changes, tables
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


def scope_request_ids(conn: Connection) -> None:
    """Make request ids unique per user, not across users (issue 12, item 9).

    A global UNIQUE let one user learn, through a 409, that another used an id, and squat ids.
    PostgreSQL swaps the constraint in place; SQLite cannot drop a column's UNIQUE, so the table is
    rebuilt from the current definition, keeping every row.
    """
    for table in (tables.holds, tables.usage_records):
        uniques = inspect(conn).get_unique_constraints(table.name)
        if not any(u["column_names"] == ["request_id"] for u in uniques):
            continue
        if conn.dialect.name == "postgresql":
            for unique in uniques:
                if unique["column_names"] == ["request_id"]:
                    conn.execute(text(f'ALTER TABLE {table.name} DROP CONSTRAINT "{unique["name"]}"'))
            name = f"uq_{table.name}_user_request"
            conn.execute(text(f"ALTER TABLE {table.name} ADD CONSTRAINT {name} UNIQUE (user_id, request_id)"))
        else:
            _rebuild_sqlite(conn, table)


def _rebuild_sqlite(conn: Connection, table: Table) -> None:
    """Recreate a SQLite table from its definition in tables.py, copying the columns both have."""
    old = f"{table.name}_before_rebuild"
    kept = {c["name"] for c in inspect(conn).get_columns(table.name)}
    for index in inspect(conn).get_indexes(table.name):
        conn.execute(text(f'DROP INDEX IF EXISTS "{index["name"]}"'))
    conn.execute(text(f"ALTER TABLE {table.name} RENAME TO {old}"))
    table.create(conn)
    columns = ", ".join(c.name for c in table.columns if c.name in kept)
    conn.execute(text(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {old}"))  # noqa: S608
    conn.execute(text(f"DROP TABLE {old}"))


_BUDGET_COLUMNS = (
    ("budget_micros", "BIGINT"),
    ("budget_period", "VARCHAR(8)"),
    ("period_start", "TIMESTAMP WITH TIME ZONE"),
    ("period_spent_micros", "BIGINT NOT NULL DEFAULT 0"),
    ("period_held_micros", "BIGINT NOT NULL DEFAULT 0"),
)


def add_budgets(conn: Connection) -> None:
    """Give users and keys their periodic budget columns (issue 15); teams are made with theirs."""
    for table in ("users", "api_keys"):
        for column, ddl in _BUDGET_COLUMNS:
            add_column(conn, table, column, ddl)


def add_team_columns(conn: Connection) -> None:
    """Name the team a key, a hold and a usage row belong to (issue 15); create_all made teams."""
    for table in ("api_keys", "holds", "usage_records"):
        add_column(conn, table, "team_id", "BIGINT REFERENCES teams (id)")
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_api_keys_team_id ON api_keys (team_id)"))
    conn.execute(
        text("CREATE INDEX IF NOT EXISTS ix_usage_hourly_team_id_hour_at ON usage_hourly (team_id, hour_at)")
    )


# In order; append new steps at the end.
STEPS: list[Step] = [
    demote_local_user,
    add_hold_heartbeat,
    add_session_generation,
    index_usage_by_time,
    aggregates.backfill,
    scope_request_ids,
    add_budgets,
    add_team_columns,
    aggregates.backfill_daily,
]


def migrate(conn: Connection) -> None:
    """Run every step, in order, in the caller's transaction."""
    for step in STEPS:
        step(conn)

"""Hourly usage sums: added to in the settlement's transaction, backfilled once, kept past retention.

One row per UTC hour, user, key and model; a settlement adds its request with one upsert on a row
that the same transaction's user and key updates already serialise, so it adds no lock of its own.
Raw usage rows older than usage_retention_days are deleted in small batches; the sums stay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, Connection, DateTime, bindparam, exists, select, text

from gateway.store.tables import usage_hourly, usage_records

SUMMED = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_micros")
PRUNE_BATCH = 1000  # rows per delete: short transactions that never hold the table for long

_COLUMNS = "hour_at, user_id, key_id, model, requests, " + ", ".join(SUMMED)
_ON_CONFLICT = "ON CONFLICT (hour_at, user_id, key_id, model) DO UPDATE SET " + ", ".join(
    f"{name} = usage_hourly.{name} + excluded.{name}" for name in ("requests", *SUMMED)
)
# The settlement's binds: b_* name the request, u_* its usage (store/billing.py). A row's team is
# its key's, which never changes, so team_id is not part of the conflict key.
ADD_VALUES = "SELECT :b_hour, :b_user, :b_key, :b_model, CAST(:b_team AS BIGINT), 1, " + ", ".join(
    f":u_{n}" for n in SUMMED
)
_ADD_COLUMNS = "hour_at, user_id, key_id, model, team_id, requests, " + ", ".join(SUMMED)
ADD_SQL = f"INSERT INTO usage_hourly ({_ADD_COLUMNS}) {ADD_VALUES} {{where}} {_ON_CONFLICT}"
# On SQLite an INSERT … SELECT with ON CONFLICT needs a WHERE, or the parser reads ON as a join.
ADD_SQLITE = ADD_SQL.format(where="WHERE true")


def hour_of(moment: datetime) -> datetime:
    """Return the start of the UTC hour a moment falls in."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def _hour_sql(conn: Connection) -> str:
    if conn.dialect.name == "postgresql":
        return "date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff': the hour, in that form.
    return "strftime('%Y-%m-%d %H:00:00.000000', created_at)"


def backfill(conn: Connection) -> None:
    """Sum the existing usage rows into hours, once: when there are rows and no sums yet."""
    if conn.execute(select(exists().select_from(usage_hourly))).scalar():
        return
    if not conn.execute(select(exists().select_from(usage_records))).scalar():
        return
    hour = _hour_sql(conn)
    sums = ", ".join(f"COALESCE(SUM({name}), 0)" for name in SUMMED)
    conn.execute(
        text(  # built from constants only
            f"INSERT INTO usage_hourly ({_COLUMNS}) SELECT {hour}, user_id, key_id, model, COUNT(*), {sums}"  # noqa: S608
            f" FROM usage_records GROUP BY {hour}, user_id, key_id, model"
        )
    )


# Oldest first by (created_at, id), so each batch is an index range, not a scan.
_PRUNE = text(
    "DELETE FROM usage_records WHERE id IN (SELECT id FROM usage_records WHERE created_at < :cutoff"
    " ORDER BY created_at, id LIMIT :batch)"
).bindparams(bindparam("cutoff", type_=DateTime(timezone=True)), bindparam("batch", type_=BigInteger))


def prune_batch(conn: Connection, retention_days: int, now: datetime, batch: int = PRUNE_BATCH) -> int:
    """Delete up to `batch` usage rows older than the retention; return how many went."""
    cutoff = now - timedelta(days=retention_days)
    return conn.execute(_PRUNE, {"cutoff": cutoff, "batch": batch}).rowcount

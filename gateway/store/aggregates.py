"""Usage sums per UTC hour and per UTC day: added to in the settlement's transaction, backfilled once,
kept past retention, and read in tiers.

One row per period, user, key and model; a settlement adds its request with one upsert into each,
on rows that the same transaction's user and key updates already serialise, so it adds no lock of
its own. Reports read whole days from the daily sums, the whole hours at the edge of `since` from
the hourly ones and only the part of an hour before them from the raw rows (`tiers`). Raw usage
rows older than usage_retention_days are deleted in small batches; the sums stay.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, Connection, DateTime, Table, bindparam, exists, select, text

from gateway.store.tables import usage_daily, usage_hourly, usage_records

SUMMED = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_micros")
PRUNE_BATCH = 1000  # rows per delete: short transactions that never hold the table for long


def _add_sql(table: str, moment: str, bind: str) -> str:
    """The settlement's upsert into one table of sums; {where} is left for the caller."""
    conflict = f"ON CONFLICT ({moment}, user_id, key_id, model) DO UPDATE SET " + ", ".join(
        f"{name} = {table}.{name} + excluded.{name}" for name in ("requests", *SUMMED)
    )
    # The settlement's binds: b_* name the request, u_* its usage (store/billing.py). A row's team
    # is its key's, which never changes, so team_id is not part of the conflict key.
    values = f"SELECT :{bind}, :b_user, :b_key, :b_model, CAST(:b_team AS BIGINT), 1, " + ", ".join(
        f":u_{n}" for n in SUMMED
    )
    columns = f"{moment}, user_id, key_id, model, team_id, requests, " + ", ".join(SUMMED)
    return f"INSERT INTO {table} ({columns}) {values} {{where}} {conflict}"


ADD_SQL = _add_sql("usage_hourly", "hour_at", "b_hour")
ADD_DAILY_SQL = _add_sql("usage_daily", "day_at", "b_day")
# On SQLite an INSERT … SELECT with ON CONFLICT needs a WHERE, or the parser reads ON as a join.
ADD_SQLITE = ADD_SQL.format(where="WHERE true")
ADD_DAILY_SQLITE = ADD_DAILY_SQL.format(where="WHERE true")
_COLUMNS = "user_id, key_id, model, requests, " + ", ".join(SUMMED)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def hour_of(moment: datetime) -> datetime:
    """Return the start of the UTC hour a moment falls in."""
    return _utc(moment).replace(minute=0, second=0, microsecond=0)


def day_of(moment: datetime) -> datetime:
    """Return the start of the UTC day a moment falls in."""
    return _utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)


Tier = tuple[Table, datetime | None, datetime | None]  # a source of sums, from its start to its end


def tiers(since: datetime | None) -> list[Tier]:
    """Where the sums from `since` on are read, exactly and in the fewest rows.

    Whole UTC days from the daily sums, the whole hours before the first of them from the hourly
    sums, and the part of an hour before those from the raw rows; without `since`, every day.
    """
    if since is None:
        return [(usage_daily, None, None)]
    since = _utc(since)
    hour, day = hour_of(since), day_of(since)
    hour += timedelta(hours=1) if hour < since else timedelta()
    day += timedelta(days=1) if day < since else timedelta()
    found: list[Tier] = [(usage_daily, day, None)]
    if hour < day:
        found.append((usage_hourly, hour, day))
    if since < hour:
        found.append((usage_records, since, hour))
    return found


def _period_sql(conn: Connection, column: str, unit: str) -> str:
    """SQL for the start of the UTC hour or day (unit) a timestamp column falls in."""
    if conn.dialect.name == "postgresql":
        return f"date_trunc('{unit}', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff': the start, in that form.
    form = "%Y-%m-%d %H:00:00.000000" if unit == "hour" else "%Y-%m-%d 00:00:00.000000"
    return f"strftime('{form}', {column})"


def _empty(conn: Connection, table: Table) -> bool:
    return not conn.execute(select(exists().select_from(table))).scalar()


def backfill(conn: Connection) -> None:
    """Sum the existing usage rows into hours, once: when there are rows and no sums yet."""
    if not _empty(conn, usage_hourly) or _empty(conn, usage_records):
        return
    hour = _period_sql(conn, "created_at", "hour")
    sums = ", ".join(f"COALESCE(SUM({name}), 0)" for name in SUMMED)
    conn.execute(
        text(  # built from constants only
            # No team_id: this step runs before add_team_columns on a database from before teams.
            f"INSERT INTO usage_hourly (hour_at, {_COLUMNS}) SELECT {hour}, user_id, key_id, model,"  # noqa: S608
            f" COUNT(*), {sums} FROM usage_records GROUP BY {hour}, user_id, key_id, model"
        )
    )


def backfill_daily(conn: Connection) -> None:
    """Sum the hourly sums into days, once: when there are hours and no days yet (db init)."""
    if not _empty(conn, usage_daily) or _empty(conn, usage_hourly):
        return
    day = _period_sql(conn, "hour_at", "day")
    sums = ", ".join(f"SUM({name})" for name in ("requests", *SUMMED))
    conn.execute(
        text(  # built from constants only
            f"INSERT INTO usage_daily (day_at, team_id, {_COLUMNS}) SELECT {day}, MAX(team_id),"  # noqa: S608
            f" user_id, key_id, model, {sums} FROM usage_hourly GROUP BY {day}, user_id, key_id, model"
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

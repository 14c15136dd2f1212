"""Reading the usage records: filtered rows, and sums per user, key, team, model or day, as JSON-ready dicts.

The sums are read from the daily and hourly sums (store/aggregates.py), served by their (user_id, …)
and (key_id, …) indexes when filtered; days are UTC days on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, func, select
from sqlalchemy.sql.elements import ColumnElement

from gateway.clock import as_utc
from gateway.store import aggregates
from gateway.store.records import Record
from gateway.store.tables import api_keys, teams, usage_records, users

GROUPS = ("user", "key", "team", "model", "day")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_ROW_COLUMNS = (
    usage_records.c.id,
    usage_records.c.request_id,
    usage_records.c.user_id,
    users.c.email,
    usage_records.c.key_id,
    api_keys.c.prefix.label("key_prefix"),
    usage_records.c.model,
    usage_records.c.prompt_tokens,
    usage_records.c.completion_tokens,
    usage_records.c.cached_tokens,
    usage_records.c.reasoning_tokens,
    usage_records.c.cost_micros,
    usage_records.c.status,
    usage_records.c.outcome,
    usage_records.c.stream,
    usage_records.c.estimated,
    usage_records.c.latency_ms,
    usage_records.c.ttfb_ms,
    usage_records.c.created_at,
)
_MOMENT = {"usage_daily": "day_at", "usage_hourly": "hour_at"}  # each table of sums' period column
_SUMMED = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_micros")


def _filter(
    query: Select,
    user_id: int | None,
    key_id: int | None,
    model: str | None,
    since: datetime | None,
) -> Select:
    if user_id is not None:
        query = query.where(usage_records.c.user_id == user_id)
    if key_id is not None:
        query = query.where(usage_records.c.key_id == key_id)
    if model is not None:
        query = query.where(usage_records.c.model == model)
    if since is not None:
        query = query.where(usage_records.c.created_at >= _as_utc(since))
    return query


@dataclass(frozen=True)
class UsageRow(Record):
    """One request's usage row, with the owner's email and the key's display prefix."""

    id: int
    request_id: str
    user_id: int
    email: str
    key_id: int
    key_prefix: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_micros: int
    status: int
    outcome: str
    stream: bool
    estimated: bool
    latency_ms: int
    ttfb_ms: int | None
    created_at: datetime


# The fields that name a group in a UsageSum, per group_by.
GROUP_FIELDS = {
    "user": ("user_id", "email"),
    "key": ("key_id", "key_prefix", "name", "email"),
    "team": ("team_id", "team"),
    "model": ("model",),
    "day": ("day",),
}


@dataclass(frozen=True)
class UsageSum(Record):
    """Requests, tokens and cost summed over one user, key, team, model or UTC day."""

    group_by: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_micros: int
    user_id: int | None = None
    email: str | None = None
    key_id: int | None = None
    key_prefix: str | None = None
    name: str | None = None
    model: str | None = None
    day: str | None = None
    team_id: int | None = None
    team: str | None = None  # the team's name

    def to_json(self) -> dict[str, Any]:
        """Return the group's own fields and the sums (not the fields of other groupings)."""
        out = {name: getattr(self, name) for name in GROUP_FIELDS[self.group_by]}
        out.update((name, getattr(self, name)) for name in ("requests", *_SUMMED))
        return out


def list_usage(
    conn: Connection,
    *,
    user_id: int | None = None,
    key_id: int | None = None,
    model: str | None = None,
    since: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[UsageRow]:
    """Return usage rows, newest first, at most `limit` of them."""
    query = (
        select(*_ROW_COLUMNS)
        .join(users, users.c.id == usage_records.c.user_id)
        .join(api_keys, api_keys.c.id == usage_records.c.key_id)
        .order_by(usage_records.c.created_at.desc(), usage_records.c.id.desc())
        .limit(min(max(limit, 1), MAX_LIMIT))
    )
    rows = conn.execute(_filter(query, user_id, key_id, model, since))
    return [UsageRow(**dict(row._mapping, created_at=as_utc(row.created_at))) for row in rows]


def _utc_day(conn: Connection, moment: ColumnElement[datetime]) -> ColumnElement[str]:
    if conn.dialect.name == "postgresql":
        # timestamptz → the UTC wall clock, whatever the session's TimeZone is.
        return func.to_char(func.timezone("UTC", moment), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", moment)


def summarize(
    conn: Connection,
    group_by: str,
    *,
    user_id: int | None = None,
    key_id: int | None = None,
    model: str | None = None,
    since: datetime | None = None,
) -> list[UsageSum]:
    """Return request counts, token and cost sums per user, key, team, model or UTC day.

    Whole days are read from the daily sums, the whole hours before them from the hourly sums and
    only the part of an hour after `since` from the raw rows (aggregates.tiers), so the answer is
    exact and costs a row per day, not per request.

    :raises ValueError: group_by is not one of GROUPS.
    """
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    found: dict[tuple[Any, ...], UsageSum] = {}
    for table, start, end in aggregates.tiers(since):
        for row in conn.execute(_sums_query(conn, table, group_by, user_id, key_id, model, start, end)):
            values = {name: int(getattr(row, name)) for name in (*_SUMMED, "requests")}
            group = tuple(getattr(row, name) for name in GROUP_FIELDS[group_by])
            if group in found:
                values = {name: getattr(found[group], name) + value for name, value in values.items()}
            found[group] = UsageSum(group_by, **{**row._mapping, **values})
    if group_by == "day":  # days read best in order; the rest busiest first
        return [found[group] for group in sorted(found)]
    return sorted(found.values(), key=lambda s: (-s.cost_micros, -s.requests, _group(s)))


def _group(row: UsageSum) -> tuple[Any, ...]:
    return tuple(getattr(row, name) for name in GROUP_FIELDS[row.group_by])


def _as_utc(moment: datetime) -> datetime:
    # SQLite stores timestamps as text without an offset, all in UTC: compare in UTC.
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _sums_query(
    conn: Connection,
    table: Table,
    group_by: str,
    user_id: int | None,
    key_id: int | None,
    model: str | None,
    start: datetime | None,
    end: datetime | None,
) -> Select:
    """Sum one source (the daily or hourly sums, or the raw rows) between start and end, per group."""
    summed = table is not usage_records  # a table of sums: a row per period, with its request count
    moment = table.c.created_at if not summed else table.c[_MOMENT[table.name]]
    if group_by == "user":
        keys: tuple[ColumnElement[Any], ...] = (table.c.user_id, users.c.email)
    elif group_by == "key":
        keys = (table.c.key_id, api_keys.c.prefix.label("key_prefix"), api_keys.c.name, users.c.email)
    elif group_by == "team":  # team keys' requests only: the team paid for them
        keys = (table.c.team_id, teams.c.name.label("team"))
    elif group_by == "model":
        keys = (table.c.model,)
    else:
        keys = (_utc_day(conn, moment).label("day"),)
    requests = func.sum(table.c.requests) if summed else func.count()
    sums = [func.coalesce(func.sum(table.c[name]), 0).label(name) for name in _SUMMED]
    query = select(*keys, func.coalesce(requests, 0).label("requests"), *sums).select_from(table)
    if group_by in ("user", "key"):
        query = query.join(users, users.c.id == table.c.user_id)
    if group_by == "key":
        query = query.join(api_keys, api_keys.c.id == table.c.key_id)
    if group_by == "team":
        query = query.join(teams, teams.c.id == table.c.team_id)
    for column, value in (("user_id", user_id), ("key_id", key_id), ("model", model)):
        if value is not None:
            query = query.where(table.c[column] == value)
    if start is not None:
        query = query.where(moment >= start)
    if end is not None:
        query = query.where(moment < end)
    return query.group_by(*keys)

"""Reading the usage records: filtered rows, and sums per user, key, model or day, as JSON-ready dicts.

The sums are one GROUP BY each, served by the (user_id, created_at) and (key_id, created_at) indexes
when filtered; days are UTC days on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select
from sqlalchemy.sql.elements import ColumnElement

from gateway.clock import as_utc
from gateway.store.records import Record
from gateway.store.tables import api_keys, usage_records, users

GROUPS = ("user", "key", "model", "day")
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
        # SQLite stores timestamps as text without an offset, all in UTC: compare in UTC.
        since = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
        query = query.where(usage_records.c.created_at >= since)
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
    "model": ("model",),
    "day": ("day",),
}


@dataclass(frozen=True)
class UsageSum(Record):
    """Requests, tokens and cost summed over one user, key, model or UTC day."""

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


def _utc_day(conn: Connection) -> ColumnElement[str]:
    created_at = usage_records.c.created_at
    if conn.dialect.name == "postgresql":
        # timestamptz → the UTC wall clock, whatever the session's TimeZone is.
        return func.to_char(func.timezone("UTC", created_at), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", created_at)


def summarize(
    conn: Connection,
    group_by: str,
    *,
    user_id: int | None = None,
    key_id: int | None = None,
    model: str | None = None,
    since: datetime | None = None,
) -> list[UsageSum]:
    """Return request counts, token and cost sums per user, key, model or UTC day.

    :raises ValueError: group_by is not one of GROUPS.
    """
    if group_by == "user":
        keys: tuple[ColumnElement[Any], ...] = (usage_records.c.user_id, users.c.email)
        order: list[ColumnElement[Any]] = []
    elif group_by == "key":
        keys = (usage_records.c.key_id, api_keys.c.prefix.label("key_prefix"), api_keys.c.name, users.c.email)
        order = []
    elif group_by == "model":
        keys = (usage_records.c.model,)
        order = []
    elif group_by == "day":
        keys = (_utc_day(conn).label("day"),)
        order = [keys[0]]
    else:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    sums = [func.coalesce(func.sum(usage_records.c[name]), 0).label(name) for name in _SUMMED]
    query = select(*keys, func.count().label("requests"), *sums).select_from(usage_records)
    if group_by in ("user", "key"):
        query = query.join(users, users.c.id == usage_records.c.user_id)
    if group_by == "key":
        query = query.join(api_keys, api_keys.c.id == usage_records.c.key_id)
    # Busiest first, except days, which read best in order.
    order = order or [func.sum(usage_records.c.cost_micros).desc(), func.count().desc()]
    query = _filter(query, user_id, key_id, model, since).group_by(*keys).order_by(*order, *keys)
    # PostgreSQL sums BIGINT as NUMERIC, which arrives as Decimal: money leaves here as int.
    return [
        UsageSum(
            group_by, **{**row._mapping, **{name: int(getattr(row, name)) for name in (*_SUMMED, "requests")}}
        )
        for row in conn.execute(query)
    ]

"""A team's usage by member and model, read from the daily and hourly sums (their team_id).

Settlement writes the key's team into each row of sums (store/aggregates.py), so a team's rows are
found by the (team_id, day_at) and (team_id, hour_at) indexes without a join through api_keys; only
the part of an hour that since cuts into is read from the raw rows (under an hour of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from gateway.store import aggregates
from gateway.store.tables import usage_daily, usage_records, users


@dataclass(frozen=True)
class MemberUsage:
    """Requests, tokens and cost of one member's team keys on one model."""

    user_id: int
    email: str
    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int


_SUMMED = ("requests", "prompt_tokens", "completion_tokens", "cost_micros")


def usage_by_member(
    conn: Connection, team_id: int, since: datetime, *, user_id: int | None = None
) -> list[MemberUsage]:
    """Sum a team's usage per member and model from since on, exactly; by email, then cost.

    With user_id, only that member's rows (what a member who is not an owner may see).
    """
    found: dict[tuple[int, str, str], MemberUsage] = {}
    # Whole days from the daily sums, the whole hours before them hourly, the part of an hour raw.
    for table, start, end in aggregates.tiers(since):
        rows = table.c
        raw = table is usage_records  # a request per row, not sums
        moment = rows.created_at if raw else rows.day_at if table is usage_daily else rows.hour_at
        sums = [
            func.count().label(n) if raw and n == "requests" else func.coalesce(func.sum(rows[n]), 0).label(n)
            for n in _SUMMED
        ]
        query = (
            select(rows.user_id, users.c.email, rows.model, *sums)
            .join(users, users.c.id == rows.user_id)
            .where(rows.team_id == team_id, moment >= start)
            .group_by(rows.user_id, users.c.email, rows.model)
        )
        if end is not None:
            query = query.where(moment < end)
        if user_id is not None:
            query = query.where(rows.user_id == user_id)
        for row in conn.execute(query):
            group = (row.user_id, row.email, row.model)
            totals = [int(getattr(row, name)) for name in _SUMMED]
            if group in found:
                totals = [a + b for a, b in zip(totals, _totals(found[group]), strict=True)]
            found[group] = MemberUsage(*group, *totals)
    return sorted(found.values(), key=lambda u: (u.email, -u.cost_micros, u.model))


def _totals(usage: MemberUsage) -> list[int]:
    return [getattr(usage, name) for name in _SUMMED]

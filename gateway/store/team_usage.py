"""A team's usage by member and model, read from the hourly sums (usage_hourly.team_id).

Settlement writes the key's team into each hourly row (store/aggregates.py), so a team's rows are
found by the (team_id, hour_at) index without a join through api_keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from gateway.store import aggregates
from gateway.store.tables import usage_hourly, users


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
    """Sum a team's usage per member and model from the start of since's UTC hour; by email, then cost.

    With user_id, only that member's rows (what a member who is not an owner may see).
    """
    hourly = usage_hourly.c
    sums = [func.coalesce(func.sum(hourly[name]), 0).label(name) for name in _SUMMED]
    query = (
        select(hourly.user_id, users.c.email, hourly.model, *sums)
        .join(users, users.c.id == hourly.user_id)
        .where(hourly.team_id == team_id, hourly.hour_at >= aggregates.hour_of(since))
        .group_by(hourly.user_id, users.c.email, hourly.model)
    )
    if user_id is not None:
        query = query.where(hourly.user_id == user_id)
    found = [
        MemberUsage(row.user_id, row.email, row.model, *(int(getattr(row, name)) for name in _SUMMED))
        for row in conn.execute(query)
    ]
    return sorted(found, key=lambda u: (u.email, -u.cost_micros, u.model))

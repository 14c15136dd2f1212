"""Who is in which team, as the console shows it: a user's teams with their role, a team's members.

Read-only; store/teams.py owns the writes (add_member, remove_member) and the team records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from gateway.clock import as_utc
from gateway.store.tables import team_members, teams, users


@dataclass(frozen=True)
class Member:
    """One member of a team, with the user id the console's remove button names."""

    user_id: int
    email: str
    role: str
    joined_at: datetime


@dataclass(frozen=True)
class Membership:
    """One of a user's teams and the user's role in it."""

    team_id: int
    name: str
    role: str


def memberships_of(conn: Connection, user_id: int) -> list[Membership]:
    """Return the teams a user belongs to, by name, with the user's role in each."""
    query = (
        select(teams.c.id, teams.c.name, team_members.c.role)
        .join(team_members, team_members.c.team_id == teams.c.id)
        .where(team_members.c.user_id == user_id)
        .order_by(teams.c.name)
    )
    return [Membership(row.id, row.name, row.role) for row in conn.execute(query)]


def members_of(conn: Connection, team_id: int) -> list[Member]:
    """Return a team's members: owners first, then by email."""
    query = (
        select(users.c.id, users.c.email, team_members.c.role, team_members.c.created_at)
        .join(users, users.c.id == team_members.c.user_id)
        .where(team_members.c.team_id == team_id)
        .order_by(team_members.c.role.desc(), users.c.email)  # 'owner' sorts after 'member'
    )
    return [Member(row.id, row.email, row.role, as_utc(row.created_at)) for row in conn.execute(query)]


def owner_count(conn: Connection, team_id: int) -> int:
    """Return how many owners a team has."""
    return conn.execute(
        select(func.count())
        .select_from(team_members)
        .where(team_members.c.team_id == team_id, team_members.c.role == "owner")
    ).scalar_one()


def team_names(conn: Connection, team_ids: set[int]) -> dict[int, str]:
    """Return the names of these teams by id (for labelling team keys)."""
    if not team_ids:
        return {}
    rows = conn.execute(select(teams.c.id, teams.c.name).where(teams.c.id.in_(sorted(team_ids))))
    return {row.id: row.name for row in rows}

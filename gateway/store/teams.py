"""Teams in the store: create, list, show; members and their roles; credits to the team's balance.

Membership decides whether a team key works (store/principals.py), so adding or removing a member
bumps the access change counter in the same transaction, and every key cache forgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.clock import as_utc
from gateway.errors import InvalidRequestError, NameTakenError, NotFoundError
from gateway.store import billing, budgets, changes
from gateway.store.records import Record
from gateway.store.tables import team_ledger_entries, team_members, teams, users

ROLES = ("owner", "member")
MAX_NAME = 200


@dataclass(frozen=True)
class TeamRecord(Record):
    """One team as shown: its money, its budget as of the reading, and its members."""

    object_name = "team"

    id: int
    name: str
    balance_micros: int
    held_micros: int
    budget_micros: int | None
    budget_period: str | None
    period_spent_micros: int
    period_resets_at: datetime | None
    created_at: datetime
    members: list[dict[str, Any]] = field(default_factory=list)  # [{"email", "role"}], by email

    @property
    def available_micros(self) -> int:
        return self.balance_micros - self.held_micros

    def derived(self) -> dict[str, Any]:
        return {"available_micros": self.available_micros}


def check_name(name: str) -> str:
    """Return the team name as stored (trimmed), or raise invalid_request_error."""
    normal = name.strip()
    if not normal or len(normal) > MAX_NAME:
        raise InvalidRequestError(f"A team name has 1 to {MAX_NAME} characters.", param="name")
    return normal


def create_team(conn: Connection, name: str, now: datetime) -> int:
    """Create a team with no money, members or budget; return its id.

    :raises NameTakenError: a team already has this name (also when another admin wins a race).
    """
    name = check_name(name)
    if find_team(conn, name) is not None:
        raise NameTakenError(f"A team named {name!r} already exists.", param="name")
    try:
        with conn.begin_nested():  # a failed INSERT aborts the whole transaction on PostgreSQL
            return conn.execute(
                insert(teams).values(name=name, created_at=now).returning(teams.c.id)
            ).scalar_one()
    except IntegrityError:
        raise NameTakenError(f"A team named {name!r} already exists.", param="name") from None


def find_team(conn: Connection, name: str) -> Row[Any] | None:
    """Return the team's row by name, or None."""
    return conn.execute(select(teams).where(teams.c.name == name.strip())).first()


def team_id_of(conn: Connection, name: str) -> int:
    """Return the id of the team with this name, or raise not_found."""
    row = find_team(conn, name)
    if row is None:
        raise NotFoundError(f"There is no team named {name.strip()!r}.", code="team_not_found")
    return row.id


def list_teams(conn: Connection, now: datetime, *, team_id: int | None = None) -> list[TeamRecord]:
    """Return teams by name, each with its members."""
    query = select(teams).order_by(teams.c.name)
    if team_id is not None:
        query = query.where(teams.c.id == team_id)
    rows = conn.execute(query).all()
    members = _members(conn, [row.id for row in rows])
    return [
        TeamRecord(
            id=row.id,
            name=row.name,
            balance_micros=row.balance_micros,
            held_micros=row.held_micros,
            created_at=as_utc(row.created_at),
            members=members.get(row.id, []),
            **budgets.fields_of(row, now),
        )
        for row in rows
    ]


def get_team(conn: Connection, name: str, now: datetime) -> TeamRecord:
    """Return one team by name, or raise not_found."""
    return list_teams(conn, now, team_id=team_id_of(conn, name))[0]


def get_team_by_id(conn: Connection, team_id: int, now: datetime) -> TeamRecord:
    """Return one team by id, or raise not_found."""
    found = list_teams(conn, now, team_id=team_id)
    if not found:
        raise NotFoundError(f"There is no team with id {team_id}.", code="team_not_found")
    return found[0]


def _members(conn: Connection, team_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    if not team_ids:
        return {}
    query = (
        select(team_members.c.team_id, users.c.email, team_members.c.role)
        .join(users, users.c.id == team_members.c.user_id)
        .where(team_members.c.team_id.in_(team_ids))
        .order_by(users.c.email)
    )
    out: dict[int, list[dict[str, Any]]] = {}
    for row in conn.execute(query):
        out.setdefault(row.team_id, []).append({"email": row.email, "role": row.role})
    return out


def role_of(conn: Connection, team_id: int, user_id: int) -> str | None:
    """Return a user's role in a team, or None when they are not a member."""
    return conn.execute(
        select(team_members.c.role).where(
            team_members.c.team_id == team_id, team_members.c.user_id == user_id
        )
    ).scalar()


def add_member(conn: Connection, team_id: int, user_id: int, role: str, now: datetime) -> None:
    """Make a user a member of a team with this role (or change the role of a member)."""
    if role not in ROLES:
        raise InvalidRequestError(f"A role is one of {', '.join(ROLES)}.", param="role")
    moved = conn.execute(
        update(team_members)
        .where(team_members.c.team_id == team_id, team_members.c.user_id == user_id)
        .values(role=role)
    ).rowcount
    if not moved:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(team_members).values(team_id=team_id, user_id=user_id, role=role, created_at=now)
                )
        except IntegrityError:  # added meanwhile by another admin: set the role on that row
            add_member(conn, team_id, user_id, role, now)
            return
    changes.bump(conn)


def remove_member(conn: Connection, team_id: int, user_id: int) -> bool:
    """Take a user out of a team: their team keys stop working; return False if they were not in it."""
    removed = conn.execute(
        delete(team_members).where(team_members.c.team_id == team_id, team_members.c.user_id == user_id)
    ).rowcount
    if removed:
        changes.bump(conn)
    return bool(removed)


def team_ids_of(conn: Connection, user_id: int) -> list[int]:
    """Return the ids of the teams a user belongs to."""
    return list(
        conn.execute(select(team_members.c.team_id).where(team_members.c.user_id == user_id)).scalars()
    )


def credit_team(conn: Connection, team_id: int, amount_micros: int, note: str, now: datetime) -> int:
    """Add credit to a team's balance (or remove it, when negative) with a ledger entry; return the balance.

    As for users, a debit may take only what is available beside the holds (billing.credit_balance).

    :raises NotFoundError: there is no such team.
    :raises InvalidRequestError: a debit larger than the available balance (code insufficient_balance).
    """
    return billing.credit_balance(
        conn, teams, team_ledger_entries.c.team_id, team_id, amount_micros, note, now
    )

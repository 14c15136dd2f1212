"""Users in the store: create, find, list; the built-in local user the quickstart's keys belong to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.clock import as_utc, utcnow
from gateway.errors import EmailTakenError, InvalidRequestError, NotFoundError
from gateway.store import budgets, ratelimit
from gateway.store.records import Record
from gateway.store.tables import users

LOCAL_USER = "local@gateway"  # owns keys created without --user; unlimited, never an admin
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class UserRecord(Record):
    """One user as listed: never a password hash."""

    object_name = "user"

    id: int
    email: str
    is_admin: bool
    unlimited: bool
    balance_micros: int
    held_micros: int
    created_at: datetime
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_concurrent: int | None = None
    budget_micros: int | None = None
    budget_period: str | None = None
    period_spent_micros: int = 0
    period_resets_at: datetime | None = None

    @property
    def available_micros(self) -> int:
        return self.balance_micros - self.held_micros

    def derived(self) -> dict[str, Any]:
        return {"available_micros": self.available_micros}


_USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.is_admin,
    users.c.unlimited,
    users.c.balance_micros,
    users.c.held_micros,
    users.c.created_at,
    *(users.c[name] for name in ratelimit.FIELDS),
    *budgets.columns(users),
)


def find_user(conn: Connection, email: str) -> Row[Any] | None:
    """Return the user's row (password hash included, for sign-in) or None."""
    return conn.execute(select(users).where(users.c.email == email.strip().lower())).first()


def create_user(
    conn: Connection,
    email: str,
    *,
    password_hash: str | None = None,
    is_admin: bool = False,
    unlimited: bool = False,
) -> int:
    """Insert a user and return its id."""
    return conn.execute(
        insert(users)
        .values(
            email=email.strip().lower(),
            password_hash=password_hash,
            is_admin=is_admin,
            unlimited=unlimited,
            created_at=utcnow(),
        )
        .returning(users.c.id)
    ).scalar_one()


def local_user_id(conn: Connection) -> int:
    """Return the built-in unlimited user's id, creating it on first use.

    Not an admin: the quickstart's key must not be able to credit anyone. Admin rights come only
    from a user created with --admin or from the operator's GATEWAY_ADMIN_TOKEN.
    """
    row = find_user(conn, LOCAL_USER)
    if row is not None:
        return row.id
    return create_user(conn, LOCAL_USER, unlimited=True)


def check_email(email: str) -> str:
    """Return the email as stored (trimmed, lower case), or raise invalid_request_error naming it."""
    normal = email.strip().lower()
    if len(normal) > 320 or not _EMAIL.match(normal):
        raise InvalidRequestError(f"{email[:100]!r} is not an email address.", param="email")
    return normal


def register_user(conn: Connection, email: str, *, is_admin: bool = False, unlimited: bool = False) -> int:
    """Create a user with a checked email and return its id.

    :raises EmailTakenError: the email is already in use (also when another admin wins a race).
    """
    email = check_email(email)
    if find_user(conn, email) is not None:
        raise EmailTakenError(f"A user with the email {email} already exists.", param="email")
    try:
        # A savepoint, because a failed INSERT aborts the whole transaction on PostgreSQL.
        with conn.begin_nested():
            return create_user(conn, email, is_admin=is_admin, unlimited=unlimited)
    except IntegrityError:
        raise EmailTakenError(f"A user with the email {email} already exists.", param="email") from None


def list_users(
    conn: Connection, *, email: str | None = None, user_id: int | None = None, now: datetime | None = None
) -> list[UserRecord]:
    """Return users, oldest first; budgets as of now (the wall clock unless given)."""
    query = select(*_USER_COLUMNS).order_by(users.c.id)
    if email is not None:
        query = query.where(users.c.email == email.strip().lower())
    if user_id is not None:
        query = query.where(users.c.id == user_id)
    now = now or utcnow()
    return [_record(row, now) for row in conn.execute(query)]


def _record(row: Row[Any], now: datetime) -> UserRecord:
    values = {k: v for k, v in row._mapping.items() if k not in budgets.COLUMNS}
    values.update(budgets.fields_of(row, now), created_at=as_utc(row.created_at))
    return UserRecord(**values)


def get_user(conn: Connection, user_id: int) -> UserRecord:
    """Return one user, or raise not_found."""
    found = list_users(conn, user_id=user_id)
    if not found:
        raise NotFoundError(f"There is no user with id {user_id}.", code="user_not_found")
    return found[0]

"""Users and API keys in the store: create, find, list, revoke; and the principal behind a key."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway import keys, ratelimit
from gateway.errors import GatewayError, InvalidRequestError, NotFoundError
from gateway.models import api_keys, users

LOCAL_USER = "local@gateway"  # owns keys created without --user; unlimited


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Read a stored timestamp as aware UTC (SQLite hands back naive values)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key and its owner, as the request pipeline needs them."""

    key_id: int
    key_prefix: str
    user_id: int
    user_email: str
    is_admin: bool
    allowed_models: frozenset[str] | None
    expires_at: datetime | None
    limits: tuple[ratelimit.Limit, ...] = ()  # empty: no rate-limit work on the hot path

    def may_use(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models


def find_principal(conn: Connection, key_hash: str) -> Principal | None:
    """Return the principal for a usable key hash, or None (unknown, revoked or disabled)."""
    row = conn.execute(
        select(
            api_keys.c.id,
            api_keys.c.prefix,
            api_keys.c.key_hash,
            api_keys.c.allowed_models,
            api_keys.c.expires_at,
            users.c.id.label("user_id"),
            users.c.email,
            users.c.is_admin,
            *(api_keys.c[name] for name in ratelimit.FIELDS),
            *(users.c[name].label("user_" + name) for name in ratelimit.FIELDS),
        )
        .join(users, users.c.id == api_keys.c.user_id)
        .where(
            api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None), api_keys.c.disabled.is_(False)
        )
    ).first()
    if row is None:
        return None
    allowed = frozenset(m for m in (row.allowed_models or "").split(",") if m) or None
    return Principal(
        key_id=row.id,
        key_prefix=row.prefix,
        user_id=row.user_id,
        user_email=row.email,
        is_admin=row.is_admin,
        allowed_models=allowed,
        expires_at=as_utc(row.expires_at),
        limits=ratelimit.limits_of(row),
    )


class KeyCache:
    """A short-lived, bounded map from key hash to principal, so most requests skip the store.

    A revoked key stops working within `ttl` seconds on every host; the process that revokes
    it forgets it at once.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str, load: Callable[[], Principal | None]) -> Principal | None:
        now = time.monotonic()
        entry = self._entries.get(key_hash)
        if entry is not None and entry[0] > now:
            return entry[1]
        principal = load()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key_hash] = (now + self.ttl, principal)
        return principal

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def find_user(conn: Connection, email: str) -> Any:
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
    """Return the built-in unlimited user's id, creating it on first use."""
    row = find_user(conn, LOCAL_USER)
    if row is not None:
        return row.id
    return create_user(conn, LOCAL_USER, is_admin=True, unlimited=True)


def create_key(
    conn: Connection,
    user_id: int,
    *,
    name: str = "",
    limit_micros: int | None = None,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
) -> tuple[int, keys.MintedKey]:
    """Mint a key for a user; the secret in the result is the only copy there will ever be."""
    minted = keys.mint()
    key_id = conn.execute(
        insert(api_keys)
        .values(
            user_id=user_id,
            name=name,
            key_hash=minted.hash,
            prefix=minted.prefix,
            limit_micros=limit_micros,
            expires_at=expires_at,
            created_at=utcnow(),
            allowed_models=",".join(allowed_models) if allowed_models else None,
        )
        .returning(api_keys.c.id)
    ).scalar_one()
    return key_id, minted


def revoke_key(conn: Connection, id_or_prefix: str, user_id: int | None = None) -> int:
    """Revoke keys by id or display prefix; return how many were revoked."""
    match = (
        api_keys.c.id == int(id_or_prefix) if id_or_prefix.isdigit() else api_keys.c.prefix == id_or_prefix
    )
    query = update(api_keys).where(match, api_keys.c.revoked_at.is_(None))
    if user_id is not None:
        query = query.where(api_keys.c.user_id == user_id)
    return conn.execute(query.values(revoked_at=utcnow())).rowcount


class EmailTakenError(GatewayError):
    status = 409
    type = "invalid_request_error"
    code = "email_taken"
    default_message = "A user with this email already exists."


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_UNCHANGED: Any = object()  # update_key's default: leave the column as it is

_USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.is_admin,
    users.c.unlimited,
    users.c.balance_micros,
    users.c.held_micros,
    users.c.created_at,
    *(users.c[name] for name in ratelimit.FIELDS),
)


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return None if value is None else value.isoformat()


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


def _user_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "user",
        "email": row.email,
        "is_admin": row.is_admin,
        "unlimited": row.unlimited,
        "balance_micros": row.balance_micros,
        "held_micros": row.held_micros,
        "available_micros": row.balance_micros - row.held_micros,
        "created_at": _iso(row.created_at),
        **{name: row._mapping[name] for name in ratelimit.FIELDS},
    }


def list_users(
    conn: Connection, *, email: str | None = None, user_id: int | None = None
) -> list[dict[str, Any]]:
    """Return users as JSON-ready dicts, oldest first; never a password hash."""
    query = select(*_USER_COLUMNS).order_by(users.c.id)
    if email is not None:
        query = query.where(users.c.email == email.strip().lower())
    if user_id is not None:
        query = query.where(users.c.id == user_id)
    return [_user_json(row) for row in conn.execute(query)]


def get_user(conn: Connection, user_id: int) -> dict[str, Any]:
    """Return one user as a JSON-ready dict, or raise not_found."""
    found = list_users(conn, user_id=user_id)
    if not found:
        raise NotFoundError(f"There is no user with id {user_id}.", code="user_not_found")
    return found[0]


def _key_state(row: Any, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.disabled:
        return "disabled"
    expires_at = as_utc(row.expires_at)
    return "expired" if expires_at is not None and expires_at <= now else "active"


def _key_json(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "api_key",
        "user_id": row.user_id,
        "email": row.email,
        "name": row.name,
        "prefix": row.prefix,
        "state": _key_state(row, now),
        "allowed_models": [m for m in row.allowed_models.split(",") if m] if row.allowed_models else None,
        "limit_micros": row.limit_micros,
        "spent_micros": row.spent_micros,
        "held_micros": row.held_micros,
        "disabled": row.disabled,
        "expires_at": _iso(row.expires_at),
        "revoked_at": _iso(row.revoked_at),
        "last_used_at": _iso(row.last_used_at),
        "created_at": _iso(row.created_at),
        **{name: row._mapping[name] for name in ratelimit.FIELDS},
    }


def list_key_details(
    conn: Connection, *, user_id: int | None = None, key_id: int | None = None
) -> list[dict[str, Any]]:
    """Return keys as JSON-ready dicts, oldest first; never a hash or a secret."""
    query = (
        select(
            api_keys.c.id,
            api_keys.c.user_id,
            api_keys.c.name,
            api_keys.c.prefix,
            api_keys.c.allowed_models,
            api_keys.c.limit_micros,
            api_keys.c.spent_micros,
            api_keys.c.held_micros,
            api_keys.c.disabled,
            api_keys.c.expires_at,
            api_keys.c.revoked_at,
            api_keys.c.last_used_at,
            api_keys.c.created_at,
            *(api_keys.c[name] for name in ratelimit.FIELDS),
            users.c.email,
        )
        .join(users, users.c.id == api_keys.c.user_id)
        .order_by(api_keys.c.id)
    )
    if user_id is not None:
        query = query.where(api_keys.c.user_id == user_id)
    if key_id is not None:
        query = query.where(api_keys.c.id == key_id)
    now = utcnow()
    return [_key_json(row, now) for row in conn.execute(query)]


def get_key(conn: Connection, key_id: int) -> dict[str, Any]:
    """Return one key as a JSON-ready dict, or raise not_found."""
    found = list_key_details(conn, key_id=key_id)
    if not found:
        raise NotFoundError(f"There is no API key with id {key_id}.", code="key_not_found")
    return found[0]


def update_key(
    conn: Connection,
    key_id: int,
    *,
    name: str = _UNCHANGED,
    limit_micros: int | None = _UNCHANGED,
    disabled: bool = _UNCHANGED,
    expires_at: datetime | None = _UNCHANGED,
    allowed_models: list[str] | None = _UNCHANGED,
) -> None:
    """Change the given settings of a key (None clears a limit, an expiry or a model list).

    :raises NotFoundError: there is no such key.
    """
    values: dict[str, Any] = {}
    if name is not _UNCHANGED:
        values["name"] = name
    if limit_micros is not _UNCHANGED:
        values["limit_micros"] = limit_micros
    if disabled is not _UNCHANGED:
        values["disabled"] = disabled
    if expires_at is not _UNCHANGED:
        values["expires_at"] = expires_at
    if allowed_models is not _UNCHANGED:
        values["allowed_models"] = ",".join(allowed_models) if allowed_models else None
    if not values:
        get_key(conn, key_id)
        return
    if conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values)).rowcount != 1:
        raise NotFoundError(f"There is no API key with id {key_id}.", code="key_not_found")

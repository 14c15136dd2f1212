"""API keys in the store: minted, hashed (only the hash and a display prefix are kept), listed, revoked."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from gateway.clock import as_utc, utcnow
from gateway.errors import InvalidRequestError, NotFoundError
from gateway.store import budgets, changes, ratelimit, teams
from gateway.store.records import Record
from gateway.store.tables import api_keys, users

KEY_PREFIX = "sk-"
PREFIX_LENGTH = 10  # "sk-" and 7 characters: enough to tell keys apart on a screen
_SHAPE = re.compile(r"sk-[A-Za-z0-9_-]{40,200}")


@dataclass(frozen=True)
class MintedKey:
    secret: str  # shown once, never stored
    hash: str
    prefix: str


def hash_key(secret: str) -> str:
    """Return the hex SHA-256 of a key, the only form in which it is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def mint() -> MintedKey:
    """Create a new random key: sk- and 48 URL-safe characters (288 bits)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(36)
    return MintedKey(secret=secret, hash=hash_key(secret), prefix=secret[:PREFIX_LENGTH])


def looks_like_key(secret: str) -> bool:
    """Tell whether a string has the shape of one of our keys, before any lookup."""
    return _SHAPE.fullmatch(secret) is not None  # match() would let "$" accept a trailing newline


def matches(secret: str, stored_hash: str) -> bool:
    """Compare a presented key with a stored hash in constant time."""
    return hmac.compare_digest(hash_key(secret), stored_hash)


class Keep(Enum):
    """update_key's default: leave the column as it is (None is a real value: it clears)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class KeyRecord(Record):
    """One key as listed: never its hash or secret."""

    object_name = "api_key"

    id: int
    user_id: int
    email: str
    name: str
    prefix: str
    state: str  # active, expired, disabled or revoked, as of the listing
    allowed_models: list[str] | None
    limit_micros: int | None
    spent_micros: int
    held_micros: int
    disabled: bool
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_concurrent: int | None = None
    team_id: int | None = None  # a team key: it draws on the team's balance and budget
    budget_micros: int | None = None
    budget_period: str | None = None
    period_spent_micros: int = 0
    period_resets_at: datetime | None = None


def create_key(
    conn: Connection,
    user_id: int,
    *,
    name: str = "",
    limit_micros: int | None = None,
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
    team_id: int | None = None,
) -> tuple[int, MintedKey]:
    """Mint a key for a user (a team key with team_id); the secret in the result is the only copy.

    :raises InvalidRequestError: the user is not a member of the team (code not_a_team_member).
    """
    if team_id is not None and teams.role_of(conn, team_id, user_id) is None:
        raise InvalidRequestError(
            "A team key is made for a member of the team; add the user to the team first.",
            param="team",
            code="not_a_team_member",
        )
    minted = mint()
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
            team_id=team_id,
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
    revoked = conn.execute(query.values(revoked_at=utcnow())).rowcount
    if revoked:
        changes.bump(conn)
    return revoked


def _state(row: Row[Any], now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.disabled:
        return "disabled"
    expires_at = as_utc(row.expires_at)
    return "expired" if expires_at is not None and expires_at <= now else "active"


def _record(row: Row[Any], now: datetime) -> KeyRecord:
    values = {k: v for k, v in row._mapping.items() if k not in budgets.COLUMNS}
    values.update(budgets.fields_of(row, now))
    for name in ("expires_at", "revoked_at", "last_used_at", "created_at"):
        values[name] = as_utc(values[name])
    values["allowed_models"] = [m for m in row.allowed_models.split(",") if m] if row.allowed_models else None
    return KeyRecord(state=_state(row, now), **values)


_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.user_id,
    users.c.email,
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
    api_keys.c.team_id,
    *budgets.columns(api_keys),
)


def list_keys(
    conn: Connection,
    *,
    user_id: int | None = None,
    key_id: int | None = None,
    team_id: int | None = None,
    now: datetime | None = None,
) -> list[KeyRecord]:
    """Return keys, oldest first; budgets as of now (the wall clock unless given)."""
    query = select(*_KEY_COLUMNS).join(users, users.c.id == api_keys.c.user_id).order_by(api_keys.c.id)
    if user_id is not None:
        query = query.where(api_keys.c.user_id == user_id)
    if key_id is not None:
        query = query.where(api_keys.c.id == key_id)
    if team_id is not None:
        query = query.where(api_keys.c.team_id == team_id)
    now = now or utcnow()
    return [_record(row, now) for row in conn.execute(query)]


def get_key(conn: Connection, key_id: int) -> KeyRecord:
    """Return one key, or raise not_found."""
    found = list_keys(conn, key_id=key_id)
    if not found:
        raise NotFoundError(f"There is no API key with id {key_id}.", code="key_not_found")
    return found[0]


def update_key(
    conn: Connection,
    key_id: int,
    *,
    name: str | Keep = KEEP,
    limit_micros: int | None | Keep = KEEP,
    disabled: bool | Keep = KEEP,
    expires_at: datetime | None | Keep = KEEP,
    allowed_models: list[str] | None | Keep = KEEP,
) -> None:
    """Change the given settings of a key (None clears a limit, an expiry or a model list).

    :raises NotFoundError: there is no such key.
    """
    values: dict[str, Any] = {}
    for column, value in (
        ("name", name),
        ("limit_micros", limit_micros),
        ("disabled", disabled),
        ("expires_at", expires_at),
    ):
        if value is not KEEP:
            values[column] = value
    if allowed_models is not KEEP:
        values["allowed_models"] = ",".join(allowed_models) if allowed_models else None
    if not values:
        get_key(conn, key_id)
        return
    if conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values)).rowcount != 1:
        raise NotFoundError(f"There is no API key with id {key_id}.", code="key_not_found")
    changes.bump(conn)

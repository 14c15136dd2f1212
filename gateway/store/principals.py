"""Who is calling: the principal behind a usable key, as the request pipeline needs it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, or_, select

from gateway.clock import as_utc
from gateway.store import ratelimit
from gateway.store.tables import api_keys, team_members, users


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
    team_id: int | None = None  # a team key: the team's balance pays, its budget applies

    def may_use(self, model: str) -> bool:
        return self.allowed_models is None or model in self.allowed_models


# Built once: building and cache-keying this join costs more than running it, and every key a
# worker's cache does not hold (a first use, an expired entry, any revocation anywhere) runs it.
_FIND = (
    select(
        api_keys.c.id,
        api_keys.c.prefix,
        api_keys.c.key_hash,
        api_keys.c.allowed_models,
        api_keys.c.expires_at,
        api_keys.c.team_id,
        users.c.id.label("user_id"),
        users.c.email,
        users.c.is_admin,
        *(api_keys.c[name] for name in ratelimit.FIELDS),
        *(users.c[name].label("user_" + name) for name in ratelimit.FIELDS),
    )
    .join(users, users.c.id == api_keys.c.user_id)
    .outerjoin(
        team_members,
        and_(team_members.c.team_id == api_keys.c.team_id, team_members.c.user_id == api_keys.c.user_id),
    )
    .where(
        api_keys.c.key_hash == bindparam("key_hash"),
        api_keys.c.revoked_at.is_(None),
        api_keys.c.disabled.is_(False),
        or_(api_keys.c.team_id.is_(None), team_members.c.id.is_not(None)),
    )
)


def find_principal(conn: Connection, key_hash: str) -> Principal | None:
    """Return the principal for a usable key hash, or None (unknown, revoked or disabled).

    A team key is usable only while its user is a member of its team: leaving the team ends it.
    """
    row = conn.execute(_FIND, {"key_hash": key_hash}).first()
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
        team_id=row.team_id,
    )

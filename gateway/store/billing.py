"""The money rules: reserve a worst case before the call, settle the real cost after, sweep stale holds.

Every balance change is one conditional UPDATE, so two gateways sharing one PostgreSQL cannot
overspend: PostgreSQL re-checks the WHERE clause after taking the row lock, and SQLite runs one
writer at a time. Rows are always locked user first, then key, so transactions cannot deadlock.
Functions here take a connection and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    String,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from gateway.errors import DuplicateRequestError, InsufficientQuotaError, InvalidRequestError, NotFoundError
from gateway.store import aggregates
from gateway.store.tables import api_keys, holds, ledger_entries, usage_records, users

OUTCOMES = ("ok", "upstream_error", "client_disconnected", "timeout", "abandoned")


# A hold is named by its user and request id: request ids come from clients, unique per user only.
HoldRef = tuple[int, str]


@dataclass(frozen=True)
class Hold:
    request_id: str
    user_id: int
    key_id: int
    model: str
    amount_micros: int

    @property
    def ref(self) -> HoldRef:
        return (self.user_id, self.request_id)


@dataclass(frozen=True)
class UsageRecord:
    status: int
    outcome: str
    stream: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_micros: int = 0
    latency_ms: int = 0
    ttfb_ms: int | None = None
    estimated: bool = False


# The hot statements are built once: building and cache-keying a Core statement costs more CPU
# than running it. Bind names differ from column names, as SQLAlchemy requires in UPDATEs.
_RESERVE_USER = (
    update(users)
    .where(
        users.c.id == bindparam("b_user"),
        or_(
            users.c.unlimited.is_(True), users.c.balance_micros - users.c.held_micros >= bindparam("b_amount")
        ),
    )
    .values(held_micros=users.c.held_micros + bindparam("b_amount"))
)
_RESERVE_KEY = (
    update(api_keys)
    .where(
        api_keys.c.id == bindparam("b_key"),
        or_(
            api_keys.c.limit_micros.is_(None),
            api_keys.c.limit_micros - api_keys.c.spent_micros - api_keys.c.held_micros
            >= bindparam("b_amount"),
        ),
    )
    .values(held_micros=api_keys.c.held_micros + bindparam("b_amount"))
)
# One statement refuses an id that is in flight (unique violation) or already settled (NOT EXISTS).
_INSERT_HOLD = insert(holds).from_select(
    ["request_id", "user_id", "key_id", "model", "amount_micros", "created_at"],
    select(
        bindparam("b_rid", type_=String),
        bindparam("b_user", type_=BigInteger),
        bindparam("b_key", type_=BigInteger),
        bindparam("b_model", type_=String),
        bindparam("b_amount", type_=BigInteger),
        bindparam("b_now", type_=DateTime(timezone=True)),
    ).where(
        ~exists().where(
            usage_records.c.user_id == bindparam("b_user"), usage_records.c.request_id == bindparam("b_rid")
        )
    ),
)
_TOUCH = (
    update(holds)
    .where(tuple_(holds.c.user_id, holds.c.request_id).in_(bindparam("b_refs", expanding=True)))
    .values(heartbeat_at=bindparam("b_now"))
)
_DELETE_HOLD = delete(holds).where(
    holds.c.user_id == bindparam("b_user"), holds.c.request_id == bindparam("b_rid")
)
# Unlimited users are not debited; their spend still shows on the key and in usage.
_CHARGE_USER = (
    update(users)
    .where(users.c.id == bindparam("b_user"))
    .values(
        balance_micros=users.c.balance_micros
        - case((users.c.unlimited.is_(True), 0), else_=bindparam("b_cost")),
        held_micros=users.c.held_micros - bindparam("b_amount"),
    )
)
_CHARGE_KEY = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("b_key"))
    .values(
        spent_micros=api_keys.c.spent_micros + bindparam("b_cost"),
        held_micros=api_keys.c.held_micros - bindparam("b_amount"),
        last_used_at=bindparam("b_now"),
    )
)
_INSERT_USAGE = insert(usage_records)

# On PostgreSQL each step is one statement, so one round trip and one commit: data-modifying CTEs.
# Each UPDATE re-checks its WHERE after taking the row lock (READ COMMITTED), as the separate
# statements do; each CTE names the one before it, which also fixes the lock order: user, then key.
_RESERVE_PG = text(
    """
    WITH u AS (
        UPDATE users SET held_micros = held_micros + :b_amount
        WHERE id = :b_user AND (unlimited OR balance_micros - held_micros >= :b_amount)
        RETURNING id
    ), k AS (
        UPDATE api_keys SET held_micros = held_micros + :b_amount
        WHERE id = :b_key AND EXISTS (SELECT 1 FROM u)
          AND (limit_micros IS NULL OR limit_micros - spent_micros - held_micros >= :b_amount)
        RETURNING id
    ), h AS (
        INSERT INTO holds (request_id, user_id, key_id, model, amount_micros, created_at)
        SELECT :b_rid, :b_user, :b_key, :b_model, :b_amount, :b_now
        WHERE EXISTS (SELECT 1 FROM k)
          AND NOT EXISTS (SELECT 1 FROM usage_records WHERE user_id = :b_user AND request_id = :b_rid)
        RETURNING id
    )
    SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM k), (SELECT count(*) FROM h)
    """
)
_USAGE_FIELDS = [f.name for f in fields(UsageRecord)]
# Built from constants only (the hourly upsert is shared with the SQLite path), never from input.
_SETTLE_PG = text(
    """
    WITH h AS (
        DELETE FROM holds WHERE user_id = :b_user AND request_id = :b_rid RETURNING id
    ), u AS (
        UPDATE users SET balance_micros = balance_micros - CASE WHEN unlimited THEN 0 ELSE :b_cost END,
                         held_micros = held_micros - :b_amount
        WHERE id = :b_user AND EXISTS (SELECT 1 FROM h)
        RETURNING id
    ), k AS (
        UPDATE api_keys SET spent_micros = spent_micros + :b_cost, held_micros = held_micros - :b_amount,
                            last_used_at = :b_now
        WHERE id = :b_key AND EXISTS (SELECT 1 FROM u)
        RETURNING id
    ), r AS (
        INSERT INTO usage_records (request_id, user_id, key_id, model, created_at, status, outcome, stream,
                                   prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
                                   cost_micros, latency_ms, ttfb_ms, estimated)
        SELECT :b_rid, :b_user, :b_key, :b_model, :b_now, :u_status, :u_outcome, :u_stream,
               :u_prompt_tokens, :u_completion_tokens, :u_cached_tokens, :u_reasoning_tokens,
               :u_cost_micros, :u_latency_ms, :u_ttfb_ms, :u_estimated
        WHERE EXISTS (SELECT 1 FROM k)
        RETURNING id
    ), a AS (
        {add_hourly}
        RETURNING id
    )
    SELECT count(*) FROM r
    """.format(add_hourly=aggregates.ADD_SQL.format(where="WHERE EXISTS (SELECT 1 FROM r)"))  # noqa: S608
)


def _binds(hold: Hold, now: datetime) -> dict[str, object]:
    return {
        "b_rid": hold.request_id,
        "b_user": hold.user_id,
        "b_key": hold.key_id,
        "b_model": hold.model,
        "b_amount": hold.amount_micros,
        "b_now": now,
    }


def reserve(conn: Connection, hold: Hold, now: datetime) -> None:
    """Hold the worst-case amount on the user's balance and the key's limit, or refuse.

    :raises InsufficientQuotaError: the balance or the key's limit cannot cover the hold.
    :raises DuplicateRequestError: a hold or usage row already has this request id.
    """
    binds = _binds(hold, now)
    if conn.dialect.name == "postgresql":
        try:
            user_ok, key_ok, held = conn.execute(_RESERVE_PG, binds).one()
        except IntegrityError:
            user_ok, key_ok, held = 1, 1, 0
        _refuse_unless(user_ok, key_ok, held)
        return
    user_ok = conn.execute(_RESERVE_USER, binds).rowcount
    key_ok = user_ok and conn.execute(_RESERVE_KEY, binds).rowcount
    held = 0
    if key_ok:
        try:
            held = conn.execute(_INSERT_HOLD, binds).rowcount
        except IntegrityError:
            held = 0
    _refuse_unless(user_ok, key_ok, held)


def _refuse_unless(user_ok: int, key_ok: int, held: int) -> None:
    # Raising rolls the caller's whole transaction back, so a refusal changes nothing.
    if user_ok != 1:
        raise InsufficientQuotaError(
            "Your balance is too low for this request; add credit or lower max_tokens."
        )
    if key_ok != 1:
        raise InsufficientQuotaError(
            "This API key has reached its spend limit; raise the limit or use another key."
        )
    if held != 1:
        raise DuplicateRequestError()


def settle(conn: Connection, hold: Hold, record: UsageRecord, now: datetime) -> bool:
    """Replace the hold by the real cost and write the request's one usage row.

    Returns False, changing nothing, when the hold is already gone (settled or swept).
    """
    binds = _binds(hold, now)
    binds["b_cost"] = record.cost_micros
    binds["b_hour"] = aggregates.hour_of(now)
    binds.update(("u_" + name, getattr(record, name)) for name in _USAGE_FIELDS)
    if conn.dialect.name == "postgresql":
        return conn.execute(_SETTLE_PG, binds).scalar_one() == 1
    if conn.execute(_DELETE_HOLD, binds).rowcount != 1:
        return False
    conn.execute(_CHARGE_USER, binds)
    conn.execute(_CHARGE_KEY, binds)
    row = dict(record.__dict__, request_id=hold.request_id, user_id=hold.user_id, key_id=hold.key_id)
    conn.execute(_INSERT_USAGE, dict(row, model=hold.model, created_at=now))
    conn.execute(aggregates.ADD, binds)
    return True


def touch(conn: Connection, refs: Collection[HoldRef], now: datetime) -> int:
    """Say that these requests still run, so the sweep leaves their holds alone; return how many."""
    if not refs:
        return 0
    return conn.execute(_TOUCH, {"b_refs": list(refs), "b_now": now}).rowcount


def sweep(conn: Connection, older_than: timedelta, now: datetime, keep: Collection[HoldRef] = ()) -> int:
    """Release holds whose worker stopped refreshing them, each as an abandoned request; return how many.

    A running request's worker refreshes heartbeat_at, so only a dead worker's holds go stale;
    keep names holds this host still means to settle (its spool), which are never swept.
    """
    seen = func.coalesce(holds.c.heartbeat_at, holds.c.created_at)
    query = select(holds).where(seen < now - older_than).order_by(holds.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    count = 0
    for row in conn.execute(query).all():
        hold = Hold(row.request_id, row.user_id, row.key_id, row.model, row.amount_micros)
        if hold.ref in keep:
            continue
        record = UsageRecord(status=0, outcome="abandoned", stream=False, estimated=True)
        if settle(conn, hold, record, now):
            count += 1
    return count


MAX_AMOUNT_MICROS = 10**15  # a billion USD: far from BIGINT's bound even after many credits


def micros_from_usd(value: Decimal | int | str) -> int:
    """Convert an amount of USD to integer micro-USD, refusing fractions of a micro-unit.

    :raises ValueError: not a finite number, more than six decimal places, or over a billion USD.
    """
    try:
        micros = Decimal(value) * 1_000_000
    except (ArithmeticError, TypeError, ValueError):
        raise ValueError(f"{value!r} is not an amount of USD") from None
    if not micros.is_finite():
        raise ValueError(f"{value!r} is not an amount of USD")
    if micros != micros.to_integral_value():
        raise ValueError(f"{value!r} has more than six decimal places (a micro-USD is the smallest unit)")
    if abs(micros) > MAX_AMOUNT_MICROS:
        raise ValueError(f"{value!r} is more than a billion USD")
    return int(micros)


def credit(conn: Connection, user_id: int, amount_micros: int, note: str, now: datetime) -> int:
    """Add credit to a user's balance (or remove it, when negative) with a ledger entry; return the balance.

    A debit may not take away money that is not available: the balance minus what is held must
    cover it, in the same conditional UPDATE that changes it, so a debit racing with requests
    cannot push the balance below what they reserved.

    :raises NotFoundError: there is no such user.
    :raises InvalidRequestError: a debit larger than the available balance (code insufficient_balance).
    """
    query = update(users).where(users.c.id == user_id)
    if amount_micros < 0:
        query = query.where(users.c.balance_micros - users.c.held_micros + amount_micros >= 0)
    balance = conn.execute(
        query.values(balance_micros=users.c.balance_micros + amount_micros).returning(users.c.balance_micros)
    ).scalar_one_or_none()
    if balance is None:
        if conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is None:
            raise NotFoundError(f"There is no user with id {user_id}.", code="user_not_found")
        raise InvalidRequestError(
            "The debit is larger than the user's available balance (balance minus held amounts).",
            code="insufficient_balance",
        )
    conn.execute(
        insert(ledger_entries).values(user_id=user_id, amount_micros=amount_micros, note=note, created_at=now)
    )
    return balance


def holds_outstanding(conn: Connection) -> tuple[int, int]:
    """Return how many holds are open and how many micro-USD they hold."""
    total = func.coalesce(func.sum(holds.c.amount_micros), 0)
    count, amount = conn.execute(select(func.count(), total)).one()
    return int(count), int(amount)

"""The money rules: reserve a worst case before the call, settle the real cost after, sweep stale holds.

Every balance change is one conditional UPDATE, so two gateways sharing one PostgreSQL cannot
overspend: PostgreSQL re-checks the WHERE clause after taking the row lock, and SQLite runs one
writer at a time. Rows are always locked user first, then team, then key, so transactions cannot
deadlock. Periodic budgets ride the same UPDATEs (store/billing_sql.py), so they hold as firmly.
Functions here take a connection and never commit: the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Connection, Table, bindparam, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from gateway.clock import as_utc
from gateway.errors import DuplicateRequestError, InvalidRequestError, NotFoundError
from gateway.store import aggregates, billing_sql, periods
from gateway.store.refusal import refusal
from gateway.store.tables import holds, ledger_entries, users

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
    team_id: int | None = None  # a team key's hold: on the team's balance, not the user's
    created_at: datetime | None = None  # when it was reserved: its cost counts in that period

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


# The hot statements are rendered once, for the driver (store/billing_sql.py says why); SQLite's
# driver takes the :name binds as written.
_RESERVE_USER = billing_sql.alone(billing_sql.RESERVE_USER)
_RESERVE_TEAM = billing_sql.alone(billing_sql.RESERVE_TEAM)
_RESERVE_KEY = billing_sql.alone(billing_sql.RESERVE_KEY)
_INSERT_HOLD = billing_sql.alone(billing_sql.INSERT_HOLD)
_CHARGE_USER = billing_sql.alone(billing_sql.CHARGE_USER)
_CHARGE_TEAM = billing_sql.alone(billing_sql.CHARGE_TEAM)
_CHARGE_KEY = billing_sql.alone(billing_sql.CHARGE_KEY)
_INSERT_USAGE = billing_sql.alone(billing_sql.INSERT_USAGE)
_TOUCH = (
    update(holds)
    .where(tuple_(holds.c.user_id, holds.c.request_id).in_(bindparam("b_refs", expanding=True)))
    .values(heartbeat_at=bindparam("b_now"))
)
_DELETE_HOLD = "DELETE FROM holds WHERE user_id = :b_user AND request_id = :b_rid"
_USAGE_FIELDS = [f.name for f in fields(UsageRecord)]


def _binds(hold: Hold, now: datetime) -> dict[str, object]:
    return {
        "b_rid": hold.request_id,
        "b_user": hold.user_id,
        "b_key": hold.key_id,
        "b_team": hold.team_id,
        "b_model": hold.model,
        "b_amount": hold.amount_micros,
        # A team key's hold is on the team's balance; the user's own balance holds nothing.
        "b_user_amount": 0 if hold.team_id is not None else hold.amount_micros,
        "b_now": now,
    }


def reserve(conn: Connection, hold: Hold, now: datetime) -> None:
    """Hold the worst-case amount on the balance (the user's, or a team key's team's), the key's
    limit and every periodic budget that applies (the key's, the user's, the team's), or refuse.

    :raises InsufficientQuotaError: the balance or the key's limit cannot cover the hold.
    :raises BudgetExceededError: a periodic budget cannot, until its period resets.
    :raises DuplicateRequestError: a hold or usage row of this user already has this request id.
    """
    binds = _binds(hold, now) | periods.starts(now, "p_")
    team = hold.team_id is not None
    run = conn.exec_driver_sql
    if conn.dialect.name == "postgresql":
        try:
            user_ok, team_ok, key_ok, held = run(billing_sql.RESERVE_PG, binds).one()
        except IntegrityError:
            user_ok, team_ok, key_ok, held = 1, int(team), 1, 0
        _refuse_unless(conn, hold, now, user_ok, team_ok if team else 1, key_ok, held)
        return
    billing_sql.sqlite_binds(binds)
    user_ok = run(_RESERVE_USER, binds).rowcount
    team_ok = (not team or run(_RESERVE_TEAM, binds).rowcount) if user_ok else 0
    key_ok = run(_RESERVE_KEY, binds).rowcount if team_ok else 0
    held = 0
    if key_ok:
        try:
            held = run(_INSERT_HOLD, binds).rowcount
        except IntegrityError:
            held = 0
    _refuse_unless(conn, hold, now, user_ok, int(team_ok), key_ok, held)


def _refuse_unless(
    conn: Connection, hold: Hold, now: datetime, user_ok: int, team_ok: int, key_ok: int, held: int
) -> None:
    # Raising rolls the caller's whole transaction back, so a refusal changes nothing. The first
    # subject that refused is unchanged by its UPDATE, so reading it tells why.
    for subject, subject_id, ok in (
        ("user", hold.user_id, user_ok),
        ("team", hold.team_id, team_ok),
        ("key", hold.key_id, key_ok),
    ):
        if ok != 1 and subject_id is not None:
            team_key = hold.team_id is not None
            raise refusal(conn, subject, subject_id, hold.amount_micros, now, team_key=team_key)
    if held != 1:
        raise DuplicateRequestError()


def settle(conn: Connection, hold: Hold, record: UsageRecord, now: datetime) -> bool:
    """Replace the hold by the real cost and write the request's one usage row.

    The cost counts against each budget in the period the hold was made in, never a later one.
    Returns False, changing nothing, when the hold is already gone (settled or swept).
    """
    if hold.created_at is None:  # a settlement spooled by a version that did not write it down
        found = _stored(conn, hold)
        if found is None:
            return False
        hold = found
    assert hold.created_at is not None
    binds = _binds(hold, now) | periods.starts(hold.created_at, "h_")
    binds["b_cost"] = record.cost_micros
    binds["b_hour"], binds["b_day"] = aggregates.hour_of(now), aggregates.day_of(now)
    binds.update(("u_" + name, getattr(record, name)) for name in _USAGE_FIELDS)
    run = conn.exec_driver_sql
    if conn.dialect.name == "postgresql":
        return run(billing_sql.SETTLE_PG, binds).scalar_one() == 1
    billing_sql.sqlite_binds(binds)
    if run(_DELETE_HOLD, binds).rowcount != 1:
        return False
    run(_CHARGE_USER, binds)
    if hold.team_id is not None:
        run(_CHARGE_TEAM, binds)
    run(_CHARGE_KEY, binds)
    run(_INSERT_USAGE, binds)
    run(aggregates.ADD_SQLITE, binds)
    run(aggregates.ADD_DAILY_SQLITE, binds)
    return True


def _stored(conn: Connection, hold: Hold) -> Hold | None:
    """Return the hold with its team and creation time as stored, or None when it is gone."""
    row = conn.execute(
        select(holds.c.team_id, holds.c.created_at).where(
            holds.c.user_id == hold.user_id, holds.c.request_id == hold.request_id
        )
    ).first()
    if row is None:
        return None
    return replace(hold, team_id=row.team_id, created_at=as_utc(row.created_at))


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
        hold = Hold(
            row.request_id,
            row.user_id,
            row.key_id,
            row.model,
            row.amount_micros,
            team_id=row.team_id,
            created_at=as_utc(row.created_at),
        )
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

    :raises NotFoundError: there is no such user.
    :raises InvalidRequestError: a debit larger than the available balance (code insufficient_balance).
    """
    return credit_balance(conn, users, ledger_entries.c.user_id, user_id, amount_micros, note, now)


def credit_balance(
    conn: Connection,
    table: Table,
    ledger_owner: Column[Any],
    owner_id: int,
    amount: int,
    note: str,
    now: datetime,
) -> int:
    """Credit (or debit) the balance of a user or a team, with an entry in its ledger; return the balance.

    A debit may not take away money that is not available: the balance minus what is held must
    cover it, in the same conditional UPDATE that changes it, so a debit racing with requests
    cannot push the balance below what they reserved.

    :raises NotFoundError: there is no such row (code user_not_found or team_not_found).
    :raises InvalidRequestError: a debit larger than the available balance (code insufficient_balance).
    """
    noun = table.name.removesuffix("s")  # users → user, teams → team
    query = update(table).where(table.c.id == owner_id)
    if amount < 0:
        query = query.where(table.c.balance_micros - table.c.held_micros + amount >= 0)
    balance = conn.execute(
        query.values(balance_micros=table.c.balance_micros + amount).returning(table.c.balance_micros)
    ).scalar_one_or_none()
    if balance is None:
        if conn.execute(select(table.c.id).where(table.c.id == owner_id)).first() is None:
            raise NotFoundError(f"There is no {noun} with id {owner_id}.", code=f"{noun}_not_found")
        raise InvalidRequestError(
            f"The debit is larger than the {noun}'s available balance (balance minus held amounts).",
            code="insufficient_balance",
        )
    conn.execute(
        insert(ledger_owner.table).values(
            {ledger_owner.name: owner_id, "amount_micros": amount, "note": note, "created_at": now}
        )
    )
    return balance


def holds_outstanding(conn: Connection) -> tuple[int, int]:
    """Return how many holds are open and how many micro-USD they hold."""
    total = func.coalesce(func.sum(holds.c.amount_micros), 0)
    count, amount = conn.execute(select(func.count(), total)).one()
    return int(count), int(amount)

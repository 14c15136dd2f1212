"""Periodic budgets of users, keys and teams: set, clear, and read as of a moment.

The same five columns on all three tables (tables._budget); reserve and settle in store/billing.py
are the only writers of the spend counters, so here a budget is only set or read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, Row, Table, update

from gateway.errors import InvalidRequestError
from gateway.store import changes
from gateway.store.periods import PERIODS, BudgetState, budget_state
from gateway.store.tables import api_keys, teams, users

SUBJECTS: dict[str, Table] = {"user": users, "key": api_keys, "team": teams}
COLUMNS = ("budget_micros", "budget_period", "period_start", "period_spent_micros", "period_held_micros")


def columns(table: Table) -> list[Column[Any]]:
    """The budget columns of a table, to select beside its own."""
    return [table.c[name] for name in COLUMNS]


def state_of(row: Row[Any], now: datetime) -> BudgetState:
    """Read the budget columns of a selected row as of now."""
    return budget_state(
        row.budget_micros,
        row.budget_period,
        row.period_start,
        row.period_spent_micros,
        row.period_held_micros,
        now,
    )


def fields_of(row: Row[Any], now: datetime) -> dict[str, Any]:
    """The budget fields a record shows: budget, period, spent this period and when it resets."""
    state = state_of(row, now)
    return {
        "budget_micros": state.budget_micros,
        "budget_period": state.budget_period,
        "period_spent_micros": state.period_spent_micros,
        "period_resets_at": state.period_resets_at,
    }


def set_budget(
    conn: Connection, subject: str, subject_id: int, budget_micros: int | None, period: str | None
) -> bool:
    """Set (or, with None, clear) a subject's periodic budget; return False when there is no such row.

    A new period kind starts its count afresh: the stored start no longer names a period of it.
    Held amounts stay as they are, since the requests holding them are still in flight.

    :raises InvalidRequestError: a negative budget, or a budget without a period (or a bad one).
    """
    table = SUBJECTS[subject]
    if budget_micros is not None:
        if budget_micros < 0:
            raise InvalidRequestError("A budget cannot be negative.", param="budget")
        if period not in PERIODS:
            raise InvalidRequestError(
                f"A budget needs a period: one of {', '.join(PERIODS)}.", param="period"
            )
    else:
        period = None
    current = conn.execute(
        table.select().with_only_columns(table.c.budget_period).where(table.c.id == subject_id)
    ).first()
    if current is None:
        return False
    values: dict[str, Any] = {"budget_micros": budget_micros, "budget_period": period}
    if current.budget_period != period:
        values.update(period_start=None, period_spent_micros=0)
    conn.execute(update(table).where(table.c.id == subject_id).values(**values))
    changes.bump(conn)  # the key cache of every worker forgets what it knew
    return True

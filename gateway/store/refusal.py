"""Why a reservation was refused: the balance, the key's limit, or which periodic budget, and until when.

Only refusals come here, after the conditional UPDATE that refused changed nothing on that row:
one read of the row tells the balance from the budget, so accepted requests pay for no diagnosis.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, select

from gateway.errors import BudgetExceededError, GatewayError, InsufficientQuotaError
from gateway.store import budgets
from gateway.store.periods import next_start
from gateway.store.tables import api_keys, teams, users

# Whose budget, as the message names it; and each period's adjective.
_WHOSE = {"user": "Your", "team": "The team's", "key": "This API key's"}
_ADJECTIVE = {"day": "daily", "week": "weekly", "month": "monthly"}
_TABLES: dict[str, Table] = {"user": users, "team": teams, "key": api_keys}

USER_BALANCE = "Your balance is too low for this request; add credit or lower max_tokens."
TEAM_BALANCE = "The team's balance is too low for this request; ask for credit or lower max_tokens."
KEY_LIMIT = "This API key has reached its spend limit; raise the limit or use another key."


def refusal(
    conn: Connection, subject: str, subject_id: int, amount: int, now: datetime, *, team_key: bool = False
) -> GatewayError:
    """Return the error for a subject ('user', 'team' or 'key') that refused to hold `amount`."""
    table = _TABLES[subject]
    row = conn.execute(select(table).where(table.c.id == subject_id)).first()
    if row is not None and not _money_short(subject, row, amount, team_key):
        state = budgets.state_of(row, now)
        remaining = state.remaining_micros
        if remaining is not None and remaining < amount and state.budget_period is not None:
            return budget_exceeded(subject, state.budget_period, state.budget_micros or 0, amount, now)
    return InsufficientQuotaError({"user": USER_BALANCE, "team": TEAM_BALANCE, "key": KEY_LIMIT}[subject])


def _money_short(subject: str, row: Row[Any], amount: int, team_key: bool) -> bool:
    """Tell whether the row's balance (or the key's lifetime limit) is what cannot cover the hold."""
    if subject == "key":
        return row.limit_micros is not None and row.limit_micros - row.spent_micros - row.held_micros < amount
    if subject == "user" and (team_key or row.unlimited):
        return False
    return bool(row.balance_micros - row.held_micros < amount)


def budget_exceeded(
    subject: str, period: str, budget: int, amount: int, now: datetime
) -> BudgetExceededError:
    """Build the 429 that names the budget, when it resets (ISO UTC) and how long that is."""
    resets = next_start(period, now)
    when = resets.strftime("%Y-%m-%dT%H:%M:%SZ")
    whose = f"{_WHOSE[subject]} {_ADJECTIVE[period]} budget"
    if amount > budget:
        message = f"This request may cost more than {whose} allows (it resets at {when}); lower max_tokens."
    else:
        message = f"{whose} is used up for this period; it resets at {when}."
    return BudgetExceededError(message, retry_after=max(1, math.ceil((resets - now).total_seconds())))

"""A periodic budget as the console draws it: spent this period against the budget, and when it resets.

Keys, users and teams carry the same fields (budget_micros, budget_period, period_spent_micros,
period_resets_at, as read by store/budgets.fields_of), so one view serves all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

WARN_AT = 80  # percent: the bar turns amber, as the alerts' default threshold does


class Budgeted(Protocol):
    @property
    def budget_micros(self) -> int | None: ...
    @property
    def budget_period(self) -> str | None: ...
    @property
    def period_spent_micros(self) -> int: ...
    @property
    def period_resets_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class BudgetBar:
    budget_micros: int
    spent_micros: int
    period: str
    resets_at: datetime | None
    percent: int  # 0..100, for the <progress> element (CSP forbids inline widths)
    level: str  # ok, warn or over

    @property
    def label(self) -> str:
        return f"{self.percent}% of the {self.period}'s budget spent"


def budget_bar(subject: Budgeted) -> BudgetBar | None:
    """Return the bar of a subject's budget this period, or None when it has no budget."""
    budget = subject.budget_micros
    if budget is None or subject.budget_period is None:
        return None
    spent = subject.period_spent_micros
    # Integer arithmetic only (money is never a float); a budget of 0 is spent from the start.
    percent = 100 if budget <= 0 else min(100, spent * 100 // budget)
    if spent >= budget:
        level = "over"
    elif percent >= WARN_AT:
        level = "warn"
    else:
        level = "ok"
    return BudgetBar(budget, spent, subject.budget_period, subject.period_resets_at, percent, level)

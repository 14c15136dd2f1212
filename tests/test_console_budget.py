"""The console's budget bar: percent and level from integer micro-USD, for any subject with a budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from gateway.console.budget import budget_bar

RESETS = datetime(2027, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Subject:
    budget_micros: int | None
    period_spent_micros: int
    budget_period: str | None = "month"
    period_resets_at: datetime | None = RESETS


@pytest.mark.parametrize(
    "budget, spent, percent, level",
    [
        (1_000_000, 0, 0, "ok"),
        (1_000_000, 799_999, 79, "ok"),  # rounded down, never up into the next level
        (1_000_000, 800_000, 80, "warn"),
        (1_000_000, 999_999, 99, "warn"),
        (1_000_000, 1_000_000, 100, "over"),
        (1_000_000, 3_000_000, 100, "over"),  # settled past the budget: the bar stays full
        (0, 0, 100, "over"),  # a budget of nothing is spent from the start
    ],
)
def test_budget_bar_percent_and_level(budget, spent, percent, level):
    bar = budget_bar(Subject(budget, spent))
    assert bar is not None
    assert (bar.percent, bar.level, bar.spent_micros, bar.budget_micros) == (percent, level, spent, budget)
    assert bar.resets_at == RESETS and bar.label == f"{percent}% of the month's budget spent"


def test_no_bar_without_a_budget():
    assert budget_bar(Subject(None, 5)) is None
    assert budget_bar(Subject(1_000, 5, budget_period=None)) is None

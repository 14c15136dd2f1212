"""Budget periods: UTC calendar days, weeks (from Monday) and months (from the 1st), with no cron.

A subject's stored period_start says which period its period_spent_micros counts; when that is
older than the current period's start, the subject has spent nothing yet in this one. So a new
period starts at zero by itself, on the first read or reservation after its start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PERIODS = ("day", "week", "month")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_period(kind: str) -> str:
    """Return the period kind, or raise ValueError naming the ones there are."""
    if kind not in PERIODS:
        raise ValueError(f"{kind!r} is not a budget period (one of {', '.join(PERIODS)})")
    return kind


def period_start(kind: str, moment: datetime) -> datetime:
    """Return the start (UTC) of the period of this kind that a moment falls in."""
    day = _utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    raise ValueError(f"{kind!r} is not a budget period")


def next_start(kind: str, moment: datetime) -> datetime:
    """Return the start (UTC) of the period after the one a moment falls in."""
    start = period_start(kind, moment)
    if kind == "day":
        return start + timedelta(days=1)
    if kind == "week":
        return start + timedelta(days=7)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def starts(moment: datetime, prefix: str) -> dict[str, datetime]:
    """Return the binds naming each kind's current start: {prefix + 'day': …, 'week': …, 'month': …}."""
    return {prefix + kind: period_start(kind, moment) for kind in PERIODS}


@dataclass(frozen=True)
class BudgetState:
    """A subject's budget as read at one moment: what the CLI, the console and the API show."""

    budget_micros: int | None
    budget_period: str | None
    period_spent_micros: int
    period_held_micros: int
    period_resets_at: datetime | None

    @property
    def remaining_micros(self) -> int | None:
        if self.budget_micros is None:
            return None
        return self.budget_micros - self.period_spent_micros - self.period_held_micros


def spent_now(kind: str | None, stored_start: datetime | None, spent: int, now: datetime) -> int:
    """Return what a subject has spent in the current period: nothing if its counter is older."""
    if kind is None or stored_start is None or _utc(stored_start) != period_start(kind, now):
        return 0
    return spent


def budget_state(
    budget_micros: int | None,
    budget_period: str | None,
    stored_start: datetime | None,
    spent: int,
    held: int,
    now: datetime,
) -> BudgetState:
    """Read a subject's stored budget columns as of now."""
    return BudgetState(
        budget_micros=budget_micros,
        budget_period=budget_period,
        period_spent_micros=spent_now(budget_period, stored_start, spent, now),
        period_held_micros=held,
        period_resets_at=next_start(budget_period, now) if budget_period else None,
    )

"""UTC budget periods: where a day, a week (from Monday) and a month (from the 1st) start and end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.store.periods import budget_state, check_period, next_start, period_start, spent_now


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "moment", "start", "following"),
    [
        ("day", at(2026, 12, 2, 23, 59, 59), at(2026, 12, 2), at(2026, 12, 3)),
        ("day", at(2026, 12, 3, 0, 0, 0), at(2026, 12, 3), at(2026, 12, 4)),
        ("week", at(2026, 12, 2, 12), at(2026, 11, 30), at(2026, 12, 7)),  # a Wednesday
        ("week", at(2026, 11, 30, 0), at(2026, 11, 30), at(2026, 12, 7)),  # Monday 00:00 itself
        ("week", at(2026, 11, 29, 23, 59), at(2026, 11, 23), at(2026, 11, 30)),  # Sunday night
        ("week", at(2027, 1, 1, 8), at(2026, 12, 28), at(2027, 1, 4)),  # across the new year
        ("month", at(2026, 12, 31, 23, 59), at(2026, 12, 1), at(2027, 1, 1)),
        ("month", at(2028, 2, 29, 12), at(2028, 2, 1), at(2028, 3, 1)),
        ("month", at(2027, 1, 1), at(2027, 1, 1), at(2027, 2, 1)),
    ],
)
def test_period_start_and_next_start(kind, moment, start, following):
    assert period_start(kind, moment) == start
    assert next_start(kind, moment) == following


def test_periods_are_utc_whatever_the_moments_zone():
    tokyo = datetime(2026, 12, 3, 8, 0, tzinfo=timezone(timedelta(hours=9)))  # 23:00 UTC on the 2nd
    assert period_start("day", tokyo) == at(2026, 12, 2)
    assert period_start("day", datetime(2026, 12, 2, 23, 0)) == at(2026, 12, 2)  # naive is UTC


def test_spend_of_an_older_period_counts_as_nothing():
    now = at(2026, 12, 3, 0, 0, 1)
    assert spent_now("day", at(2026, 12, 2), 500, now) == 0
    assert spent_now("day", at(2026, 12, 3), 500, now) == 500
    assert spent_now("month", datetime(2026, 12, 1), 500, now) == 500  # SQLite hands back naive
    assert spent_now(None, None, 500, now) == 0


def test_budget_state_says_when_it_resets_and_what_remains():
    state = budget_state(1000, "week", at(2026, 11, 30), 300, 200, at(2026, 12, 2))
    assert (state.period_spent_micros, state.remaining_micros) == (300, 500)
    assert state.period_resets_at == at(2026, 12, 7)
    assert budget_state(None, None, None, 0, 0, at(2026, 12, 2)).period_resets_at is None


def test_check_period_refuses_other_words():
    assert check_period("month") == "month"
    with pytest.raises(ValueError, match="day, week, month"):
        check_period("year")

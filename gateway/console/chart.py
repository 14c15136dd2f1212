"""A bar chart of daily usage, laid out here and drawn as inline SVG by the template (no JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from gateway.console.formatting import usd
from gateway.store.usage import UsageSum

WIDTH, HEIGHT = 900, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 26  # room for the axis labels


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    peak: int  # the value at the top of the scale
    baseline: float
    top: float
    left: float
    right: float
    empty: bool


def daily_tokens(rows: list[UsageSum], first_day: date, days: int) -> Chart:
    """Lay out one bar per UTC day for tokens used, with every day present, empty or not."""
    by_day = {row.day: row for row in rows}
    slot = (WIDTH - LEFT - RIGHT) / days
    baseline = HEIGHT - BOTTOM
    values = []
    for i in range(days):
        day = (first_day + timedelta(days=i)).isoformat()
        row = by_day.get(day)
        values.append((day, row))
    tokens = [(r.prompt_tokens + r.completion_tokens) if r else 0 for _, r in values]
    peak = max(tokens) or 1
    bars, ticks = [], []
    for i, ((day, row), value) in enumerate(zip(values, tokens, strict=True)):
        x = LEFT + i * slot
        height = (baseline - TOP) * value / peak
        if row:
            title = f"{day}: {row.requests} requests, {value} tokens, {usd(row.cost_micros)}"
        else:
            title = f"{day}: no requests"
        bars.append(Bar(x + slot * 0.15, baseline - height, slot * 0.7, height, title))
        if i % 5 == 0 or i == days - 1:
            ticks.append(Tick(x + slot / 2, day[5:]))
    return Chart(
        WIDTH,
        HEIGHT,
        tuple(bars),
        tuple(ticks),
        peak if any(tokens) else 0,
        baseline,
        TOP,
        LEFT,
        WIDTH - RIGHT,
        not any(tokens),
    )

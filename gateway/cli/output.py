"""How commands print: USD amounts for people, records as JSON for scripts, budgets in one line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import click

from gateway.store.records import Record


def usd(micros: int | None) -> str:
    """Format micro-USD as USD with six decimals ('-' for none)."""
    return "-" if micros is None else f"{Decimal(micros) / 1_000_000:.6f}"


def echo_json(data: Record | Sequence[Record]) -> None:
    """Print a record, or a list of them, as indented JSON."""
    plain = data.to_json() if isinstance(data, Record) else [r.to_json() for r in data]
    click.echo(json.dumps(plain, indent=2))


def budget_line(budget_micros: int | None, period: str | None, spent: int, resets: datetime | None) -> str:
    """Describe a budget: '5.000000 USD a day, 1.200000 spent, resets 2026-12-03T00:00:00+00:00'."""
    if budget_micros is None or period is None or resets is None:
        return "none"
    return f"{usd(budget_micros)} USD a {period}, {usd(spent)} spent, resets {resets.isoformat()}"

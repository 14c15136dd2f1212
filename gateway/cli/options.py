"""Options and values typed on the command line: amounts in USD, dates, limits and budgets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from gateway.store import billing, ratelimit
from gateway.store.periods import PERIODS


def micros(value: str, *, negative: bool = True) -> int:
    """Parse an amount of USD into micro-USD, or fail as a bad parameter."""
    try:
        amount = billing.micros_from_usd(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if amount < 0 and not negative:
        raise click.BadParameter(f"{value!r} is negative")
    return amount


def date(value: str) -> datetime:
    """Parse an ISO 8601 date or time, read as UTC when it names no zone."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date such as 2027-01-31") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def limit(value: str) -> int | None:
    """Parse a positive whole number, or 'none' for no limit."""
    if value.lower() == "none":
        return None
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter(f"{value!r} is not a positive whole number or 'none'")
    return int(value)


def rate_limit_options(command: Any) -> Any:
    """Add --rpm, --tpm and --concurrency: a positive number, or 'none' to clear the limit."""
    for flag, field in (("--concurrency", "max_concurrent"), ("--tpm", "tpm_limit"), ("--rpm", "rpm_limit")):
        what = {"rpm_limit": "Requests per minute", "tpm_limit": "Tokens per minute"}.get(
            field, "Requests in flight at once"
        )
        command = click.option(flag, field, default=None, help=f"{what} ('none': no limit).")(command)
    return command


def set_limits(conn: Any, kind: str, subject_id: int, options: dict[str, str | None]) -> None:
    """Write the rate limits that were given (None: not given, left as it is)."""
    values = {name: limit(value) for name, value in options.items() if value is not None}
    ratelimit.set_limits(conn, kind, subject_id, **values)


def budget_options(command: Any) -> Any:
    """Add --budget USD|none and --period day|week|month."""
    command = click.option(
        "--period", type=click.Choice(PERIODS), default=None, help="The budget's UTC calendar period."
    )(command)
    return click.option("--budget", default=None, help="Periodic budget in USD ('none': no budget).")(command)


def parse_budget(value: str | None, period: str | None) -> tuple[int | None, str | None]:
    """Parse --budget and --period into (micro-USD or None, period); a budget needs a period."""
    if value is None or value.lower() == "none":
        return None, None
    amount = micros(value, negative=False)
    if period is None:
        raise click.BadParameter("a budget needs --period day, week or month", param_hint="--period")
    return amount, period


def require_budget(value: str | None, period: str | None) -> tuple[int | None, str | None]:
    """Parse --budget and --period for a command that sets a budget: --budget must be there."""
    if value is None:
        raise click.BadParameter("give --budget USD, or --budget none to remove it", param_hint="--budget")
    return parse_budget(value, period)

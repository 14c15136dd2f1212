"""How the console shows money and times: micro-USD as USD with up to six decimals, times in UTC."""

from __future__ import annotations

from datetime import datetime


def usd(micros: int | None) -> str:
    """Format integer micro-USD as USD: at least cents, at most six decimals, no float on the way."""
    if micros is None:
        return "—"
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(int(micros)), 1_000_000)
    decimals = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}${whole:,}.{decimals}"


def when(value: str | datetime | None, missing: str = "never") -> str:
    """Format an ISO timestamp (or a datetime) as 'YYYY-MM-DD HH:MM UTC'."""
    if not value:
        return missing
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def tokens(count: int | None) -> str:
    """Format a token count with thousands separators."""
    return f"{count or 0:,}"

"""Checked readers of configuration values: each returns the value or raises a ConfigError naming its key."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def price(where: str, raw: Any) -> Decimal:
    """Read a price in USD per million tokens: a finite number, at least 0."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ConfigError(f"{where}: price must be a number of USD per million tokens")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ConfigError(f"{where}: price {raw!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{where}: price must be a finite number >= 0, got {raw!r}")
    return value


def expand(where: str, raw: Any, env: dict[str, str]) -> str:
    """Read a string, replacing each ${VAR} by the environment's value (unset is an error)."""
    if not isinstance(raw, str):
        raise ConfigError(f"{where} must be a string")

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"{where} uses ${{{name}}}, but {name} is not set in the environment")
        return env[name]

    return _VAR.sub(sub, raw)


def optional_count(where: str, raw: Any) -> int | None:
    """Read a positive integer, or None when absent."""
    if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int) or raw < 1):
        raise ConfigError(f"{where} must be a positive integer")
    return raw


def timeout(where: str, raw: Any, zero: bool = False) -> float:
    """Read a number of seconds: finite, positive (or 0 where zero is allowed)."""
    number = not isinstance(raw, bool) and isinstance(raw, int | float) and math.isfinite(raw)
    if not number or raw < 0 or (raw == 0 and not zero):
        raise ConfigError(f"{where} must be a {'' if zero else 'positive '}number of seconds")
    return float(raw)


def choice(where: str, raw: Any, choices: tuple[str, ...]) -> str:
    """Read one of a few names."""
    if raw not in choices:
        raise ConfigError(f"{where} {raw!r} is unknown; use one of {', '.join(choices)}")
    return raw


def strings(where: str, raw: Any, example: str = '["logit_bias", "user"]') -> tuple[str, ...]:
    """Read an array of non-empty names."""
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise ConfigError(f"{where} must be an array of names, e.g. {example}")
    return tuple(raw)


def table(where: str, raw: Any, env: dict[str, str], example: str) -> tuple[tuple[str, str], ...]:
    """Read a table of strings, each with its ${VAR}s expanded."""
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
        raise ConfigError(f"{where} must be a table of strings, e.g. {example}")
    return tuple((k, expand(f"{where}.{k}", v, env)) for k, v in raw.items())

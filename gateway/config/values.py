"""Checked readers of configuration values: each returns the value or raises a ConfigError naming its key."""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.config.bounds import MAX_PRICE, MAX_TOKENS
from gateway.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# RFC 9110 §5.1 field names are tokens; §5.5 values may not hold CR, LF or NUL (a CR LF in a
# configured header would split the upstream request: header injection). Other controls are refused too.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEADER_VALUE = re.compile(r"^[^\x00-\x08\x0a-\x1f\x7f]*$")


def price(where: str, raw: Any) -> Decimal:
    """Read a price in USD per million tokens: a finite number, at least 0."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ConfigError(f"{where}: price must be a number of USD per million tokens")
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise ConfigError(f"{where}: price {raw!r} is not a number") from None
    if not value.is_finite() or value < 0 or value > MAX_PRICE:
        raise ConfigError(
            f"{where}: price must be a finite number >= 0 and at most {MAX_PRICE} USD per million tokens, "
            f"got {raw!r}"
        )
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
    """Read a positive integer of tokens (at most MAX_TOKENS), or None when absent."""
    if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_TOKENS):
        raise ConfigError(f"{where} must be a positive integer, at most {MAX_TOKENS}")
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


def header_value(where: str, value: str) -> str:
    """Refuse a value bound for an HTTP header that holds CR, LF or another control character."""
    if not _HEADER_VALUE.fullmatch(value):
        raise ConfigError(f"{where} must not contain CR, LF or other control characters")
    return value


def headers(where: str, raw: Any, env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Read a table of extra HTTP headers: token names, values without CR or LF."""
    pairs = table(where, raw, env, '{ "X-Title" = "gateway" }')
    for name, value in pairs:
        if not _HEADER_NAME.fullmatch(name):
            raise ConfigError(f"{where}: {name!r} is not a valid HTTP header name")
        header_value(f"{where}.{name}", value)
    return pairs

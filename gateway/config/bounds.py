"""The range each [gateway] setting must fall in: start-up refuses a value outside it, naming the key.

The bounds keep every worst-case hold inside the BIGINT micro-units the store keeps money in, and
refuse values that silently disable a safety (a hold swept at once, a revoked key cached for days).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.errors import ConfigError

# A request's output is capped at 2**31 - 1 tokens for each of at most 128 choices (the surfaces'
# MAX_COUNT and MAX_CHOICES); with MAX_PRICE that stays ~30x inside BIGINT's 9.2e18 micro-USD.
MAX_TOKENS = 2**31 - 1
MAX_PRICE = 1_000_000  # USD per million tokens, i.e. one USD a token: far above any real model
MAX_BODY_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class Bound:
    low: float
    high: float
    low_open: bool = False  # True: the value must be above low, not equal to it
    high_open: bool = False  # True: the value must be below high, not equal to it
    unit: str = ""

    def describe(self) -> str:
        """Say the range in words, e.g. "more than 0 and at most 600 seconds"."""
        unit = f" {self.unit}" if self.unit else ""
        low = (
            f"more than {_number(self.low)} and at most" if self.low_open else f"from {_number(self.low)} to"
        )
        if self.high_open:
            low = f"more than {_number(self.low)} and less than" if self.low_open else f"{low} below"
        return f"{low} {_number(self.high)}{unit}"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


# name -> its range; key_cache_ttl is how long another worker may still accept a revoked key.
BOUNDS = {
    "max_body_bytes": Bound(1, MAX_BODY_BYTES, unit="bytes"),
    "max_upstream_body_bytes": Bound(1, 16 * MAX_BODY_BYTES, unit="bytes"),
    "default_max_tokens": Bound(1, MAX_TOKENS, unit="tokens"),
    "max_attempts": Bound(1, 20),
    "db_pool_size": Bound(1, 100),  # PostgreSQL's default max_connections is 100, for every worker
    "key_cache_ttl": Bound(0, 300, unit="seconds"),
    "hold_timeout": Bound(0, 30 * 24 * 3600, low_open=True, unit="seconds"),
    # A client that reads nothing holds a thread and a hold until write_timeout cuts it.
    "write_timeout": Bound(0, 3600, low_open=True, unit="seconds"),
    "drain_timeout": Bound(0, 60, low_open=True, unit="seconds"),
    "db_lock_timeout": Bound(0, 600, low_open=True, unit="seconds"),
    "db_statement_timeout": Bound(0, 3600, low_open=True, unit="seconds"),
    "trusted_proxies": Bound(0, 10),
    "response_retention_days": Bound(0, 36500, unit="days"),  # 0: no response is stored
    # A share of the budget: 0 would alert on the first micro-USD, 1 is the 'exhausted' alert itself.
    "alerts_threshold": Bound(0, 1, low_open=True, high_open=True),
    "alerts_interval": Bound(0, 3600, low_open=True, unit="seconds"),
}


def check(name: str, value: int | float, env_var: str | None = None) -> None:
    """Refuse a value outside its bound (or not finite) with a message naming the key."""
    bound = BOUNDS[name]
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > bound.low if bound.low_open else value >= bound.low)
    ok = ok and (value < bound.high if bound.high_open else value <= bound.high)
    if not ok:
        source = f" (from {env_var})" if env_var else ""
        raise ConfigError(f"{name} must be {bound.describe()}, got {value!r}{source}")

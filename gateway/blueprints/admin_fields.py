"""Reading the admin API's input: JSON bodies, ids, amounts, dates and query parameters, each refused clearly.

Every refusal is an invalid_request_error naming the parameter, so a bad body is a 400, never a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import request

from gateway.blueprints.body import read_json_body
from gateway.errors import InvalidRequestError
from gateway.store import billing, ratelimit

MAX_ID = 2**63 - 1  # BIGINT: a larger id cannot exist, and would overflow the driver
ID = f"int(min=1, max={MAX_ID})"


def body_of(*allowed: str) -> dict[str, Any]:
    _, body = read_json_body()
    for name in body:
        if name not in allowed:
            raise InvalidRequestError(
                f"Unknown parameter '{name[:100]}'; this endpoint accepts {', '.join(allowed)}.", param=name
            )
    return body


def bool_field(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise InvalidRequestError(f"'{name}' must be true or false.", param=name)
    return value


def id_field(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise InvalidRequestError(f"'{name}' must be a positive integer id.", param=name)
    return value


def text_field(body: dict[str, Any], name: str, max_length: int, default: str = "") -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidRequestError(
            f"'{name}' must be a string of at most {max_length} characters.", param=name
        )
    return value


def amount_field(body: dict[str, Any], usd_name: str, micros_name: str) -> tuple[int | None, str]:
    """Return the micro-USD amount given in either field (None when neither is), and the field's name."""
    if usd_name in body and micros_name in body:
        raise InvalidRequestError(f"Give '{usd_name}' or '{micros_name}', not both.", param=micros_name)
    if micros_name in body:
        value = body[micros_name]
        if value is None:
            return None, micros_name
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > billing.MAX_AMOUNT_MICROS:
            raise InvalidRequestError(f"'{micros_name}' must be an integer of micro-USD.", param=micros_name)
        return value, micros_name
    if usd_name in body:
        value = body[usd_name]
        if value is None:
            return None, usd_name
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidRequestError(f"'{usd_name}' must be a number of USD.", param=usd_name)
        try:
            # str() of a JSON float is its shortest repr, so 0.1 stays exactly 0.1 USD.
            return billing.micros_from_usd(str(value)), usd_name
        except ValueError as exc:
            raise InvalidRequestError(f"'{usd_name}': {exc}.", param=usd_name) from None
    return None, micros_name


def datetime_field(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{name}' must be an ISO 8601 date or time, or null.", param=name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(
            f"'{name}' must be an ISO 8601 date or time such as 2027-01-31 or 2027-01-31T12:00:00Z.",
            param=name,
        ) from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def models_field(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(m, str) and m and "," not in m and len(m) <= 255 for m in value
    ):
        raise InvalidRequestError(
            "'models' must be a list of provider:model ids such as [\"mock:echo\"], or null.", param="models"
        )
    return value


def limit_field(body: dict[str, Any]) -> tuple[int | None, str]:
    limit, name = amount_field(body, "limit_usd", "limit_micros")
    if limit is not None and limit < 0:
        raise InvalidRequestError(f"'{name}' must not be negative.", param=name)
    return limit, name


def rate_limits(body: dict[str, Any]) -> dict[str, int | None]:
    """Read the rate limits given in the body: each a positive integer, or null for no limit."""
    found: dict[str, int | None] = {}
    for name in ratelimit.FIELDS:
        if name in body:
            value, high = body[name], 2**62 if name == "tpm_limit" else 2**31 - 1
            wrong = isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high
            if value is not None and wrong:
                raise InvalidRequestError(f"'{name}' must be a positive integer or null.", param=name)
            found[name] = value
    return found


def query_int(name: str, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    # Length first: int() of thousands of digits is slow, then refused by Python itself.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and low <= int(raw) <= high):
        raise InvalidRequestError(f"'{name}' must be an integer from {low} to {high}.", param=name)
    return int(raw)


def usage_filters() -> dict[str, Any]:
    return {
        "user_id": query_int("user_id", 1, MAX_ID),
        "key_id": query_int("key_id", 1, MAX_ID),
        "model": request.args.get("model") or None,
        "since": datetime_field(request.args.get("since"), "since"),
    }


BUDGET_FIELDS = ("budget_usd", "budget_micros", "budget_period")


def budget_field(body: dict[str, Any]) -> tuple[int | None, str | None] | None:
    """Return the periodic budget a body sets, (micros, period) or (None, None) to clear; None if none.

    The period is checked where the budget is set (store/budgets.py), which names it in its refusal.
    """
    if not any(name in body for name in BUDGET_FIELDS):
        return None
    budget, name = amount_field(body, "budget_usd", "budget_micros")
    if budget is not None and budget < 0:
        raise InvalidRequestError(f"'{name}' must not be negative.", param=name)
    period = body.get("budget_period")
    if period is not None and not isinstance(period, str):
        raise InvalidRequestError("'budget_period' must be day, week or month.", param="budget_period")
    return budget, period if budget is not None else None


def credit_body() -> tuple[int, str, str]:
    """Read a credit's body: the non-zero amount (negative debits), the field that gave it, the note."""
    body = body_of("amount_usd", "amount_micros", "note")
    amount, name = amount_field(body, "amount_usd", "amount_micros")
    if not amount:
        raise InvalidRequestError(
            "Give a non-zero 'amount_usd' or 'amount_micros' (negative to debit).", param=name
        )
    return amount, name, text_field(body, "note", 1000)

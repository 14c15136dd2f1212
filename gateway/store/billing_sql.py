"""The statements behind billing.reserve and billing.settle: balances, limits and periodic budgets.

Each subject (the user, the team of a team key, the key) is one conditional UPDATE, written once
here and used twice: one by one on SQLite (one writer at a time), and as data-modifying CTEs of one
statement on PostgreSQL (one round trip; each UPDATE re-checks its WHERE after taking the row lock
under READ COMMITTED). Each CTE names the one before it, which fixes the lock order: user, team, key.
Built from constants only, never from input; every value is a bind.

Budget binds: p_day, p_week, p_month are the current periods' starts, h_* those of the hold's own
creation; the SQL picks by each row's budget_period (store/periods.py says why no cron is needed).
"""

# ruff: noqa: S608  (every statement here is built from the constants above it, never from input)
from __future__ import annotations

import re
from datetime import datetime

from gateway.store import aggregates

STAMPS = ("b_now", "b_hour", "b_day", "p_day", "p_week", "p_month", "h_day", "h_week", "h_month")
TEAM = "CAST(:b_team AS BIGINT)"  # typed, so a NULL team is a NULL BIGINT on PostgreSQL

_PERIOD_NOW = (
    "CASE budget_period WHEN 'day' THEN :p_day WHEN 'week' THEN :p_week WHEN 'month' THEN :p_month END"
)
_PERIOD_OF_HOLD = (
    "CASE budget_period WHEN 'day' THEN :h_day WHEN 'week' THEN :h_week WHEN 'month' THEN :h_month END"
)
# What the row has spent in the current period: its counter counts an older one, or this one.
_SPENT_NOW = f"CASE WHEN period_start = {_PERIOD_NOW} THEN period_spent_micros ELSE 0 END"
# Holds of an older period still count until they settle: a budget is never passed.
BUDGET_OK = f"(budget_micros IS NULL OR budget_micros - {_SPENT_NOW} - period_held_micros >= :b_amount)"
_BUDGET_HOLD = (
    f"period_start = COALESCE({_PERIOD_NOW}, period_start), period_spent_micros = {_SPENT_NOW},"
    " period_held_micros = period_held_micros + :b_amount"
)
# The cost counts in the period the hold was made in, and only if the row still counts that one:
# a hold made before midnight and settled after never lands in the new day.
_BUDGET_SETTLE = (
    "period_held_micros = period_held_micros - :b_amount,"
    f" period_spent_micros = period_spent_micros + CASE WHEN period_start = {_PERIOD_OF_HOLD}"
    " THEN :b_cost ELSE 0 END"
)

# A team key holds on the team's balance: the user's own (b_user_amount) is then 0 and not checked.
RESERVE_USER = f"""
    UPDATE users SET held_micros = held_micros + :b_user_amount, {_BUDGET_HOLD}
    WHERE id = :b_user AND (unlimited OR :b_user_amount = 0 OR balance_micros - held_micros >= :b_user_amount)
      AND {BUDGET_OK} {{after}}"""
RESERVE_TEAM = f"""
    UPDATE teams SET held_micros = held_micros + :b_amount, {_BUDGET_HOLD}
    WHERE id = {TEAM} AND balance_micros - held_micros >= :b_amount AND {BUDGET_OK} {{after}}"""
RESERVE_KEY = f"""
    UPDATE api_keys SET held_micros = held_micros + :b_amount, {_BUDGET_HOLD}
    WHERE id = :b_key AND (limit_micros IS NULL OR limit_micros - spent_micros - held_micros >= :b_amount)
      AND {BUDGET_OK} {{after}}"""
# One statement refuses an id in flight (unique violation) or already settled (NOT EXISTS).
INSERT_HOLD = f"""
    INSERT INTO holds (request_id, user_id, key_id, team_id, model, amount_micros, created_at)
    SELECT :b_rid, :b_user, :b_key, {TEAM}, :b_model, :b_amount, :b_now
    WHERE NOT EXISTS (SELECT 1 FROM usage_records WHERE user_id = :b_user AND request_id = :b_rid)
      {{after}}"""

# Unlimited users are not debited, nor users whose team pays; the spend shows on the key and in usage.
CHARGE_USER = f"""
    UPDATE users SET balance_micros = balance_micros
                         - CASE WHEN unlimited OR {TEAM} IS NOT NULL THEN 0 ELSE :b_cost END,
                     held_micros = held_micros - :b_user_amount, {_BUDGET_SETTLE}
    WHERE id = :b_user {{after}}"""
CHARGE_TEAM = f"""
    UPDATE teams SET balance_micros = balance_micros - :b_cost, held_micros = held_micros - :b_amount,
                     {_BUDGET_SETTLE}
    WHERE id = {TEAM} {{after}}"""
CHARGE_KEY = f"""
    UPDATE api_keys SET spent_micros = spent_micros + :b_cost, held_micros = held_micros - :b_amount,
                        last_used_at = :b_now, {_BUDGET_SETTLE}
    WHERE id = :b_key {{after}}"""
INSERT_USAGE = f"""
    INSERT INTO usage_records (request_id, user_id, key_id, team_id, model, created_at, status, outcome,
                               stream, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
                               cost_micros, latency_ms, ttfb_ms, estimated)
    SELECT :b_rid, :b_user, :b_key, {TEAM}, :b_model, :b_now, :u_status, :u_outcome, :u_stream,
           :u_prompt_tokens, :u_completion_tokens, :u_cached_tokens, :u_reasoning_tokens,
           :u_cost_micros, :u_latency_ms, :u_ttfb_ms, :u_estimated
    {{where}}"""


def alone(sql: str) -> str:
    """One subject's statement on its own (SQLite, whose driver takes :name binds): nothing to wait for."""
    return sql.format(after="", where="WHERE true")


# A :name bind as SQLAlchemy's text() finds one: not a ::cast, nor an escaped \:colon.
_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


def pyformat(sql: str) -> str:
    """Render :name binds as psycopg2's %(name)s (what SQLAlchemy's text() compiles them to)."""
    return _BIND.sub(r"%(\1)s", sql.replace("%", "%%"))


def sqlite_binds(binds: dict[str, object]) -> dict[str, object]:
    """Write the timestamps among the binds as SQLAlchemy's SQLite DateTime stores them, in place.

    'YYYY-MM-DD HH:MM:SS.ffffff', the wall time as given (an offset is dropped, not applied): byte
    for byte what SQLAlchemy's own statements write and compare with, so rows and queries agree.
    """
    for name in STAMPS:
        value = binds.get(name)
        if isinstance(value, datetime):
            binds[name] = value.isoformat(" ", "microseconds")[:26]
    return binds


_AFTER_USER_AND_TEAM = f"AND EXISTS (SELECT 1 FROM u) AND ({TEAM} IS NULL OR EXISTS (SELECT 1 FROM t))"
RESERVE_PG = pyformat(
    f"""
    WITH u AS ({RESERVE_USER.format(after="")}
        RETURNING id
    ), t AS ({RESERVE_TEAM.format(after="AND EXISTS (SELECT 1 FROM u)")}
        RETURNING id
    ), k AS ({RESERVE_KEY.format(after=_AFTER_USER_AND_TEAM)}
        RETURNING id
    ), h AS ({INSERT_HOLD.format(after="AND EXISTS (SELECT 1 FROM k)")}
        RETURNING id
    )
    SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM t), (SELECT count(*) FROM k),
           (SELECT count(*) FROM h)
    """
)
SETTLE_PG = pyformat(
    f"""
    WITH h AS (
        DELETE FROM holds WHERE user_id = :b_user AND request_id = :b_rid RETURNING id
    ), u AS ({CHARGE_USER.format(after="AND EXISTS (SELECT 1 FROM h)")}
        RETURNING id
    ), t AS ({CHARGE_TEAM.format(after="AND EXISTS (SELECT 1 FROM u)")}
        RETURNING id
    ), k AS ({CHARGE_KEY.format(after="AND EXISTS (SELECT 1 FROM u)")}
        RETURNING id
    ), r AS ({INSERT_USAGE.format(where="WHERE EXISTS (SELECT 1 FROM k)")}
        RETURNING id
    ), a AS (
        {aggregates.ADD_SQL.format(where="WHERE EXISTS (SELECT 1 FROM r)")}
        RETURNING id
    ), d AS (
        {aggregates.ADD_DAILY_SQL.format(where="WHERE EXISTS (SELECT 1 FROM r)")}
        RETURNING id
    )
    SELECT count(*) FROM r
    """
)

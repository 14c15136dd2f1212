"""Rate limits per key and per user, counted in the shared store so every worker and host shares them.

Requests and tokens per minute live in one row per subject ("user:3", "key:12") holding the current
one-minute window; one conditional UPSERT adds a request or refuses it. Concurrent requests are the
subject's open holds, so they are released wherever a hold is: at settlement, or by the sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from gateway.errors import NotFoundError, RateLimitError
from gateway.store import changes
from gateway.store.billing_sql import pyformat
from gateway.store.tables import api_keys, holds, rate_limit_windows, users

NO_LIMIT = 2**62  # bound in place of NULL, so the statement needs no typed NULL parameter
FIELDS = ("rpm_limit", "tpm_limit", "max_concurrent")


@dataclass(frozen=True)
class Limit:
    """One subject's limits; None means no limit of that kind."""

    kind: str  # "user" or "key"
    subject_id: int
    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.subject_id}"


def limits_of(row: Any) -> tuple[Limit, ...]:
    """Return the limits on a principal row (key and user columns), user first: the lock order."""
    found = []
    for kind, subject_id, prefix in (("user", row.user_id, "user_"), ("key", row.id, "")):
        values = [getattr(row, prefix + name) for name in FIELDS]
        if any(v is not None for v in values):
            found.append(Limit(kind, subject_id, *values))
    return tuple(found)


# Starts a new window or counts into the current one, but only within the limits. On PostgreSQL
# the upsert locks the subject's row until commit, so requests of one subject pass here one at a
# time across every host; SQLite runs one writer at a time. A window older than :minute is reset;
# a newer one (a host whose clock runs ahead) is counted into, so clocks a little apart agree.
# Run on the driver's cursor, like the reservation it comes with (store/billing_sql.py says why).
_ADMIT_SQLITE = """
    INSERT INTO rate_limit_windows (subject, window_minute, requests, tokens)
    VALUES (:subject, :minute, 1, :tokens)
    ON CONFLICT (subject) DO UPDATE SET
        requests = CASE WHEN rate_limit_windows.window_minute < :minute THEN 1
                        ELSE rate_limit_windows.requests + 1 END,
        tokens = CASE WHEN rate_limit_windows.window_minute < :minute THEN :tokens
                      ELSE rate_limit_windows.tokens + :tokens END,
        window_minute = CASE WHEN rate_limit_windows.window_minute < :minute THEN :minute
                             ELSE rate_limit_windows.window_minute END
    WHERE rate_limit_windows.window_minute < :minute
       OR (rate_limit_windows.requests < :rpm AND rate_limit_windows.tokens + :tokens <= :tpm)
    RETURNING requests, tokens
    """
_ADMIT_PG = pyformat(_ADMIT_SQLITE)
_WINDOW = select(
    rate_limit_windows.c.window_minute, rate_limit_windows.c.requests, rate_limit_windows.c.tokens
).where(rate_limit_windows.c.subject == bindparam("subject"))


def admit(conn: Connection, limits: tuple[Limit, ...], tokens: int, now: datetime) -> None:
    """Count one request of `tokens` worst-case tokens against each limit, or refuse it.

    Call it in the transaction that inserts the request's hold, before it: the open holds are the
    requests in flight. The caller's rollback undoes the counting when anything refuses.

    :raises RateLimitError: a limit is reached; its headers say which and when it resets.
    """
    seconds = now.timestamp()
    minute = math.floor(seconds / 60)
    reset = max(1, math.ceil((minute + 1) * 60 - seconds))
    for limit in limits:
        if limit.tpm is not None and tokens > limit.tpm:
            message = (
                f"This request may use up to {tokens} tokens, more than the {limit.tpm} tokens per"
                " minute allowed; lower max_tokens or shorten the prompt."
            )
            refusal = _refusal(limit, "tokens", _window(conn, limit, minute), reset, message)
            # Waiting never helps (docs/wire-formats.md#openai-sdk-retries).
            refusal.headers["x-should-retry"] = "false"
            raise refusal
        binds = {
            "subject": limit.subject,
            "minute": minute,
            "tokens": tokens,
            "rpm": NO_LIMIT if limit.rpm is None else limit.rpm,
            "tpm": NO_LIMIT if limit.tpm is None else limit.tpm,
        }
        admit_sql = _ADMIT_PG if conn.dialect.name == "postgresql" else _ADMIT_SQLITE
        row = conn.exec_driver_sql(admit_sql, binds).first()
        if row is None:
            used = _window(conn, limit, minute)
            kind = "requests" if limit.rpm is not None and used[0] >= limit.rpm else "tokens"
            what = f"{limit.rpm} requests" if kind == "requests" else f"{limit.tpm} tokens"
            message = f"Rate limit reached for this {limit.kind}: {what} per minute."
            raise _refusal(limit, kind, used, reset, message)
        if limit.concurrency is not None:
            # A statement of its own, after the upsert: under READ COMMITTED it takes a fresh
            # snapshot, so it sees the hold of a request that held the row lock before us. A
            # subquery in the upsert would use the snapshot from before the lock wait.
            column = holds.c.user_id if limit.kind == "user" else holds.c.key_id
            query = select(func.count()).select_from(holds).where(column == limit.subject_id)
            if conn.execute(query).scalar_one() >= limit.concurrency:
                message = (
                    f"Too many concurrent requests for this {limit.kind}:"
                    f" at most {limit.concurrency} at a time."
                )
                raise _refusal(limit, "requests", (row[0] - 1, row[1] - tokens), 1, message)


def _window(conn: Connection, limit: Limit, minute: int) -> tuple[int, int]:
    """Return the requests and tokens counted in the subject's current window."""
    row = conn.execute(_WINDOW, {"subject": limit.subject}).first()
    return (0, 0) if row is None or row.window_minute < minute else (row.requests, row.tokens)


def _refusal(limit: Limit, kind: str, used: tuple[int, int], reset: int, message: str) -> RateLimitError:
    """Build the 429 with OpenAI's headers (docs/wire-formats.md#openai-rate-limits) for these limits."""
    headers = {"retry-after": str(reset)}
    for name, value, spent in (("requests", limit.rpm, used[0]), ("tokens", limit.tpm, used[1])):
        if value is not None:
            headers[f"x-ratelimit-limit-{name}"] = str(value)
            headers[f"x-ratelimit-remaining-{name}"] = str(max(0, value - spent))
            headers[f"x-ratelimit-reset-{name}"] = f"{reset}s"
    return RateLimitError(message, type=kind, headers=headers)


def set_limits(conn: Connection, kind: str, subject_id: int, **values: int | None) -> None:
    """Set some of a key's or user's limits (rpm_limit, tpm_limit, max_concurrent); None clears one.

    :raises NotFoundError: there is no such key or user.
    :raises ValueError: an unknown name, or a limit below 1.
    """
    for name, value in values.items():
        if name not in FIELDS:
            raise ValueError(f"unknown rate limit {name!r}")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer or null")
    if not values:
        return
    table = users if kind == "user" else api_keys
    if conn.execute(update(table).where(table.c.id == subject_id).values(**values)).rowcount != 1:
        raise NotFoundError(f"There is no {kind} with id {subject_id}.", code=f"{kind}_not_found")
    changes.bump(conn)  # cached principals carry the limits

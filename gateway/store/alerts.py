"""Budget alerts in the store: which subjects crossed a share of their budget, claimed once, and sent.

A subject ('key:5', 'user:2', 'team:3') gets at most one alert of each kind ('threshold',
'exhausted') per budget period: the INSERT that claims it meets UNIQUE(subject, period_start, kind),
and ON CONFLICT DO NOTHING makes the worker (or host) that lost the race see nothing, not an error.
Each try to send it first bumps `attempts` with a conditional UPDATE, so exactly one worker owns
each try, and a row claimed by a worker that died is sent by another at a later try.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, String, Table, bindparam, or_, select, text, update

from gateway.clock import as_utc
from gateway.store import budgets
from gateway.store.periods import PERIODS, next_start, period_start, spent_now
from gateway.store.tables import api_keys, budget_alerts, teams, users

KINDS = ("threshold", "exhausted")
_TABLES: dict[str, Table] = {"key": api_keys, "user": users, "team": teams}
# What names a subject in an alert: never a key's hash, only its display prefix.
_LABELS = {"key": ("name", "prefix"), "user": ("email",), "team": ("name",)}
SHARE_SCALE = 1_000_000  # the threshold compared in integers: spent * SCALE >= budget * share

_CLAIM = text(
    """
    INSERT INTO budget_alerts (subject, period_start, kind, created_at, attempts)
    VALUES (:subject, :period_start, :kind, :now, 0)
    ON CONFLICT (subject, period_start, kind) DO NOTHING
    """
).bindparams(
    bindparam("subject", type_=String),
    bindparam("period_start", type_=DateTime(timezone=True)),
    bindparam("kind", type_=String),
    bindparam("now", type_=DateTime(timezone=True)),
)


@dataclass(frozen=True)
class Alert:
    """One alert row and what its message says about the subject."""

    id: int
    subject: str  # 'key:5'
    kind: str  # 'threshold' | 'exhausted'
    period_start: datetime
    created_at: datetime
    attempts: int
    labels: dict[str, str]  # name/email/prefix, as the subject has them
    budget_period: str | None
    budget_micros: int | None
    spent_micros: int | None  # None: the subject's counter has moved on to a later period

    @property
    def subject_kind(self) -> str:
        return self.subject.partition(":")[0]

    @property
    def subject_id(self) -> int:
        return int(self.subject.partition(":")[2])

    @property
    def resets_at(self) -> datetime | None:
        return next_start(self.budget_period, self.period_start) if self.budget_period else None


def crossings(conn: Connection, now: datetime, threshold: float) -> list[tuple[str, datetime, str]]:
    """Return (subject, period_start, kind) for each alert the subjects' spend calls for now."""
    share = round(threshold * SHARE_SCALE)
    found = []
    for kind, table in _TABLES.items():
        current = or_(
            *(
                (table.c.budget_period == name) & (table.c.period_start == period_start(name, now))
                for name in PERIODS
            )
        )
        rows = conn.execute(
            select(table.c.id, *budgets.columns(table)).where(
                table.c.budget_micros > 0, table.c.period_spent_micros > 0, current
            )
        )
        for row in rows:
            spent = spent_now(row.budget_period, row.period_start, row.period_spent_micros, now)
            start = period_start(row.budget_period, now)
            if spent * SHARE_SCALE >= row.budget_micros * share:
                found.append((f"{kind}:{row.id}", start, "threshold"))
            if spent >= row.budget_micros:
                found.append((f"{kind}:{row.id}", start, "exhausted"))
    return found


def claim(conn: Connection, now: datetime, threshold: float) -> int:
    """Insert the alert rows the current spend calls for; return how many this call created.

    Rows another worker claimed already are skipped by the unique constraint, quietly.
    """
    wanted = crossings(conn, now, threshold)
    if not wanted:
        return 0
    starts = {start for _, start, _ in wanted}
    have = {
        (row.subject, as_utc(row.period_start), row.kind)
        for row in conn.execute(
            select(budget_alerts.c.subject, budget_alerts.c.period_start, budget_alerts.c.kind).where(
                budget_alerts.c.period_start.in_(starts)
            )
        )
    }
    created = 0
    for subject, start, kind in wanted:
        if (subject, start, kind) not in have:
            params = {"subject": subject, "period_start": start, "kind": kind, "now": now}
            created += conn.execute(_CLAIM, params).rowcount or 0
    return created


def unsent(conn: Connection, max_attempts: int) -> list[Alert]:
    """Return the alerts not yet delivered that have tries left, oldest first."""
    rows = conn.execute(
        select(budget_alerts)
        .where(budget_alerts.c.sent_at.is_(None), budget_alerts.c.attempts < max_attempts)
        .order_by(budget_alerts.c.id)
    ).all()
    return [alert for row in rows if (alert := _alert(conn, row)) is not None]


def _alert(conn: Connection, row: Any) -> Alert | None:
    kind, _, raw_id = row.subject.partition(":")
    table = _TABLES.get(kind)
    if table is None or not raw_id.isdigit():
        return None
    names = _LABELS[kind]
    subject = conn.execute(
        select(*(table.c[n] for n in names), *budgets.columns(table)).where(table.c.id == int(raw_id))
    ).first()
    if subject is None:
        return None
    start = as_utc(row.period_start)
    same = subject.budget_period is not None and as_utc(subject.period_start) == start
    return Alert(
        id=row.id,
        subject=row.subject,
        kind=row.kind,
        period_start=start,
        created_at=as_utc(row.created_at),
        attempts=row.attempts,
        labels={n: getattr(subject, n) for n in names},
        budget_period=subject.budget_period,
        budget_micros=subject.budget_micros,
        spent_micros=subject.period_spent_micros if same else None,
    )


def take(conn: Connection, alert_id: int, attempts: int) -> bool:
    """Own the next try of an alert: True for exactly one caller among those that saw `attempts`."""
    result = conn.execute(
        update(budget_alerts)
        .where(
            budget_alerts.c.id == alert_id,
            budget_alerts.c.attempts == attempts,
            budget_alerts.c.sent_at.is_(None),
        )
        .values(attempts=budget_alerts.c.attempts + 1)
    )
    return result.rowcount == 1


def mark_sent(conn: Connection, alert_id: int, now: datetime) -> None:
    """Record that the webhook took the alert."""
    conn.execute(update(budget_alerts).where(budget_alerts.c.id == alert_id).values(sent_at=now))

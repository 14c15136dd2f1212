"""Balance and usage: the last 30 days by day and by model, the latest requests, the budgets that apply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import g, make_response, render_template
from werkzeug.wrappers import Response

from gateway.blueprints.services import services
from gateway.console.base import bp, no_store, signed_in
from gateway.console.budget import Budgeted
from gateway.console.chart import Chart, daily_tokens
from gateway.store import keys, memberships, teams, usage
from gateway.store.database import Database
from gateway.store.usage import UsageRow, UsageSum
from gateway.store.users import UserRecord

DAYS = 30
LATEST = 50


@dataclass(frozen=True)
class Report:
    """Usage of one user (or of everyone, for admins) over the last DAYS days."""

    first_day: date
    by_day: list[UsageSum]
    by_model: list[UsageSum]
    by_user: list[UsageSum]
    latest: list[UsageRow]
    chart: Chart
    totals: dict[str, int]


def usage_report(db: Database, user_id: int | None) -> Report:
    """Sum the last DAYS UTC days (today included) for one user, or for all when user_id is None."""
    first_day = datetime.now(UTC).date() - timedelta(days=DAYS - 1)
    since = datetime.combine(first_day, time.min, UTC)
    with db.session_scope() as conn:
        by_day = usage.summarize(conn, "day", user_id=user_id, since=since)
        by_model = usage.summarize(conn, "model", user_id=user_id, since=since)
        by_user = [] if user_id is not None else usage.summarize(conn, "user", since=since)
        latest = usage.list_usage(conn, user_id=user_id, limit=LATEST)
    totals = {
        name: sum(getattr(row, name) for row in by_day)
        for name in ("requests", "prompt_tokens", "completion_tokens", "cost_micros")
    }
    chart = daily_tokens(by_day, first_day, DAYS)
    return Report(first_day, list(reversed(by_day)), by_model, by_user, latest, chart, totals)


@dataclass(frozen=True)
class Budget:
    """One periodic budget that limits the user's spend: their own, a key's or a team's."""

    label: str
    subject: Budgeted  # a UserRecord, KeyRecord or TeamRecord: they share the budget fields


def budgets_of(db: Database, user: UserRecord, now: datetime) -> list[Budget]:
    """Return the budgets set on the user, on their keys that are not revoked, and on their teams."""
    found = [Budget("Your budget", user)] if user.budget_micros is not None else []
    with db.session_scope() as conn:
        for key in keys.list_keys(conn, user_id=user.id, now=now):
            if key.budget_micros is not None and key.state != "revoked":
                found.append(Budget(f"Key {key.name or 'unnamed'} ({key.prefix}…)", key))
        for member in memberships.memberships_of(conn, user.id):
            team = teams.get_team_by_id(conn, member.team_id, now)
            if team.budget_micros is not None:
                found.append(Budget(f"Team {team.name}", team))
    return found


@bp.get("/usage")
@signed_in
def show_usage() -> Response:
    """Show the user's balance, the budgets that apply to them and their own usage, nobody else's."""
    svc = services()
    report = usage_report(svc.db, g.user.id)
    limits = budgets_of(svc.db, g.user, svc.clock.now())
    html = render_template("usage.html", report=report, days=DAYS, budgets=limits)
    return no_store(make_response(html))

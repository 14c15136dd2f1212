"""Balance and usage: the last 30 days by day and by model, and the latest requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import g, make_response, render_template
from werkzeug.wrappers import Response

from gateway.blueprints.services import services
from gateway.console.base import bp, no_store, signed_in
from gateway.console.chart import Chart, daily_tokens
from gateway.store import usage
from gateway.store.database import Database
from gateway.store.usage import UsageRow, UsageSum

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


@bp.get("/usage")
@signed_in
def show_usage() -> Response:
    """Show the user's balance and their own usage, nobody else's."""
    report = usage_report(services().db, g.user.id)
    return no_store(make_response(render_template("usage.html", report=report, days=DAYS)))

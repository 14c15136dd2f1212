"""`gateway usage`: recent requests, or their sums per user, key, team, model or day."""

from __future__ import annotations

import click

from gateway.cli.options import date
from gateway.cli.output import echo_json, usd
from gateway.cli.session import store, user_of
from gateway.store import usage


@click.command("usage")
@click.option("--user", "email", default=None, help="Only this user's requests.")
@click.option("--since", default=None, help="From this date or time on (ISO 8601, UTC).")
@click.option("--limit", default=usage.DEFAULT_LIMIT, type=click.IntRange(1, usage.MAX_LIMIT))
@click.option(
    "--by", "group_by", type=click.Choice(usage.GROUPS), help="Sums per user, key, team, model or day."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, for scripts.")
def usage_command(
    email: str | None, since: str | None, limit: int, group_by: str | None, as_json: bool
) -> None:
    """Show recent requests, newest first, or their sums with --by."""
    since_at = None if since is None else date(since)
    with store() as conn:
        user_id = None if email is None else user_of(conn, email).id
        if group_by:
            sums = usage.summarize(conn, group_by, user_id=user_id, since=since_at)
        else:
            rows = usage.list_usage(conn, user_id=user_id, since=since_at, limit=limit)
    if group_by:
        echo_json(sums) if as_json else _echo_sums(sums, group_by)
    else:
        echo_json(rows) if as_json else _echo_rows(rows)


def _echo_rows(rows: list[usage.UsageRow]) -> None:
    click.echo(
        f"{'CREATED (UTC)':<19}  {'USER':<24} {'MODEL':<24} {'PROMPT':>7} {'COMPL':>7}"
        f" {'COST USD':>12} {'STATUS':>6}  OUTCOME"
    )
    for r in rows:
        # S: streamed; ~: tokens estimated because the upstream never reported usage.
        marks = ("S" if r.stream else "") + ("~" if r.estimated else "")
        click.echo(
            f"{r.created_at:%Y-%m-%d %H:%M:%S}  {r.email:<24} {r.model:<24}"
            f" {r.prompt_tokens:>7} {r.completion_tokens:>7} {usd(r.cost_micros):>12}"
            f" {r.status:>6}  {r.outcome} {marks}".rstrip()
        )


def _echo_sums(rows: list[usage.UsageSum], group_by: str) -> None:
    label = {"user": "email", "key": "key_prefix", "team": "team", "model": "model", "day": "day"}[group_by]
    click.echo(f"{group_by.upper():<32} {'REQUESTS':>9} {'PROMPT':>12} {'COMPLETION':>12} {'COST USD':>14}")
    for r in rows:
        click.echo(
            f"{getattr(r, label):<32} {r.requests:>9} {r.prompt_tokens:>12} {r.completion_tokens:>12}"
            f" {usd(r.cost_micros):>14}"
        )

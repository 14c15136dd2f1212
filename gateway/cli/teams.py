"""`gateway teams …`: teams, their members and roles, their balance and their periodic budget."""

from __future__ import annotations

import click

from gateway import clock
from gateway.cli.options import budget_options, micros, require_budget
from gateway.cli.output import budget_line, echo_json, usd
from gateway.cli.session import store, user_of
from gateway.store import budgets
from gateway.store import teams as team_store


@click.group("teams")
def teams() -> None:
    """Teams: members share a balance and a budget through team keys."""


@teams.command("create")
@click.argument("name")
def teams_create(name: str) -> None:
    """Create a team with no members, no balance and no budget."""
    with store() as conn:
        team_id = team_store.create_team(conn, name, clock.utcnow())
    click.echo(f"created team {team_id} ({name.strip()})")


@teams.command("add")
@click.argument("name")
@click.argument("email")
@click.option("--role", type=click.Choice(team_store.ROLES), default="member", show_default=True)
def teams_add(name: str, email: str, role: str) -> None:
    """Add a user to a team (or change their role); owners manage the team in the console."""
    with store() as conn:
        team_id = team_store.team_id_of(conn, name)
        user = user_of(conn, email)
        team_store.add_member(conn, team_id, user.id, role, clock.utcnow())
    click.echo(f"{user.email} is a{'n' if role == 'owner' else ''} {role} of {name.strip()}")


@teams.command("remove")
@click.argument("name")
@click.argument("email")
def teams_remove(name: str, email: str) -> None:
    """Take a user out of a team: their keys of the team stop working within seconds."""
    with store() as conn:
        team_id = team_store.team_id_of(conn, name)
        user = user_of(conn, email)
        removed = team_store.remove_member(conn, team_id, user.id)
    if not removed:
        raise click.ClickException(f"{user.email} is not a member of {name.strip()}")
    click.echo(f"removed {user.email} from {name.strip()}; their team keys no longer work")


# ignore_unknown_options lets a debit be typed as `gateway teams credit NAME -5`.
@teams.command("credit", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("usd_amount", metavar="USD")
@click.option("--note", default="", help="Why: kept with the team's ledger entry.")
def teams_credit(name: str, usd_amount: str, note: str) -> None:
    """Add USD to a team's balance, or take it away with a negative amount."""
    amount = micros(usd_amount)
    if amount == 0:
        raise click.BadParameter("the amount must not be zero", param_hint="USD")
    with store() as conn:
        team_id = team_store.team_id_of(conn, name)
        balance = team_store.credit_team(conn, team_id, amount, note, clock.utcnow())
    click.echo(f"credited {usd(amount)} USD to {name.strip()}; balance now {usd(balance)} USD")


@teams.command("budget")
@click.argument("name")
@budget_options
def teams_budget(name: str, budget: str | None, period: str | None) -> None:
    """Set a team's periodic budget, shared by all of its keys."""
    amount, kind = require_budget(budget, period)
    with store() as conn:
        budgets.set_budget(conn, "team", team_store.team_id_of(conn, name), amount, kind)
    click.echo(f"{name.strip()}: budget {'none' if amount is None else f'{usd(amount)} USD a {kind}'}")


@teams.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for scripts.")
def teams_show(name: str, as_json: bool) -> None:
    """Show a team's balance, budget and members."""
    with store() as conn:
        team = team_store.get_team(conn, name, clock.utcnow())
    if as_json:
        echo_json(team)
        return
    click.echo(f"team {team.id}: {team.name}")
    click.echo(f"balance   {usd(team.balance_micros)} USD")
    click.echo(f"held      {usd(team.held_micros)} USD")
    click.echo(f"available {usd(team.available_micros)} USD")
    spent, resets = team.period_spent_micros, team.period_resets_at
    click.echo(f"budget    {budget_line(team.budget_micros, team.budget_period, spent, resets)}")
    for member in team.members:
        click.echo(f"member    {member['email']} ({member['role']})")


@teams.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, for scripts.")
def teams_list(as_json: bool) -> None:
    """List teams with their balances, budgets and number of members."""
    with store() as conn:
        rows = team_store.list_teams(conn, clock.utcnow())
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'ID':>5}  {'NAME':<24} {'BALANCE USD':>16} {'BUDGET USD':>20} {'SPENT USD':>14} MEMBERS")
    for t in rows:
        per = f"/{t.budget_period}" if t.budget_period else ""
        click.echo(
            f"{t.id:>5}  {t.name:<24} {usd(t.balance_micros):>16} {usd(t.budget_micros) + per:>20}"
            f" {usd(t.period_spent_micros):>14} {len(t.members)}"
        )

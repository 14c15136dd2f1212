"""`gateway keys …`: create (for a user, or a team), list, limits, budgets, revoke."""

from __future__ import annotations

import click

from gateway.cli.options import (
    budget_options,
    date,
    micros,
    parse_budget,
    rate_limit_options,
    require_budget,
    set_limits,
)
from gateway.cli.output import echo_json, usd
from gateway.cli.session import store, user_of
from gateway.store import budgets, teams
from gateway.store.keys import create_key, get_key, list_keys, revoke_key
from gateway.store.users import local_user_id


@click.group("keys")
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", default="", help="A label to tell keys apart.")
@click.option("--user", "email", default=None, help="Owner's email (default: the local user).")
@click.option("--team", default=None, help="A team key: the team's balance pays; the user must be a member.")
@click.option("--limit", default=None, help="Spend limit of this key, in USD.")
@click.option("--expires", default=None, help="Expiry date (ISO 8601, UTC).")
@click.option("--models", default=None, help="Comma-separated provider:model ids it may use.")
@budget_options
@rate_limit_options
def keys_create(
    name: str,
    email: str | None,
    team: str | None,
    limit: str | None,
    expires: str | None,
    models: str | None,
    budget: str | None,
    period: str | None,
    **limits: str | None,
) -> None:
    """Create a key and print it once, as the last line."""
    limit_micros = None if limit is None else micros(limit, negative=False)
    expires_at = None if expires is None else date(expires)
    budget_micros, budget_period = parse_budget(budget, period)
    with store() as conn:
        user_id = local_user_id(conn) if email is None else user_of(conn, email).id
        team_id = None if team is None else teams.team_id_of(conn, team)
        key_id, minted = create_key(
            conn,
            user_id,
            name=name,
            limit_micros=limit_micros,
            expires_at=expires_at,
            allowed_models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
            team_id=team_id,
        )
        set_limits(conn, "key", key_id, limits)
        if budget_micros is not None:
            budgets.set_budget(conn, "key", key_id, budget_micros, budget_period)
    click.echo(f"created key {key_id} ({minted.prefix}…); it is shown once, store it now:", err=True)
    click.echo(minted.secret)


@keys.command("list")
@click.option("--user", "email", default=None, help="Only this user's keys.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, for scripts.")
def keys_list(email: str | None, as_json: bool) -> None:
    """List keys by id, prefix, state and spend; never a full key."""
    with store() as conn:
        user_id = None if email is None else user_of(conn, email).id
        rows = list_keys(conn, user_id=user_id)
    if as_json:
        echo_json(rows)
        return
    click.echo(
        f"{'ID':>5}  {'PREFIX':<12} {'STATE':<8} {'USER':<28} {'SPENT USD':>14} {'LIMIT USD':>14}"
        f" {'BUDGET USD':>14}  NAME"
    )
    for k in rows:
        per = f"/{k.budget_period}" if k.budget_period else ""
        click.echo(
            f"{k.id:>5}  {k.prefix + '…':<12} {k.state:<8} {k.email:<28}"
            f" {usd(k.spent_micros):>14} {usd(k.limit_micros):>14} {usd(k.budget_micros) + per:>14}  {k.name}"
        )


@keys.command("limits")
@click.argument("key_id", type=int)
@rate_limit_options
def keys_limits(key_id: int, **limits: str | None) -> None:
    """Set a key's rate limits; running gateways apply them within the key cache's lifetime."""
    with store() as conn:
        set_limits(conn, "key", key_id, limits)
    click.echo(f"key {key_id}: " + ", ".join(f"{k}={v}" for k, v in limits.items() if v is not None))


@keys.command("budget")
@click.argument("key_id", type=int)
@budget_options
def keys_budget(key_id: int, budget: str | None, period: str | None) -> None:
    """Set a key's periodic budget, beside its lifetime --limit."""
    amount, kind = require_budget(budget, period)
    with store() as conn:
        get_key(conn, key_id)
        budgets.set_budget(conn, "key", key_id, amount, kind)
    click.echo(f"key {key_id}: budget {'none' if amount is None else f'{usd(amount)} USD a {kind}'}")


@keys.command("revoke")
@click.argument("id_or_prefix")
def keys_revoke(id_or_prefix: str) -> None:
    """Revoke a key by its id or display prefix."""
    with store() as conn:
        count = revoke_key(conn, id_or_prefix)
    if count == 0:
        raise click.ClickException(f"no active key matches {id_or_prefix!r}")
    click.echo(f"revoked {count} key(s); running gateways stop accepting it within seconds")

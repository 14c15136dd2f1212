"""`gateway users …` and `gateway credit`: accounts, their passwords, limits, budgets and balances."""

from __future__ import annotations

import click

from gateway import clock
from gateway.cli.options import budget_options, micros, rate_limit_options, require_budget, set_limits
from gateway.cli.output import budget_line, echo_json, usd
from gateway.cli.session import store, user_of
from gateway.store import billing, budgets, logins
from gateway.store.users import list_users, register_user


@click.group("users")
def users() -> None:
    """Users: who owns keys and balances."""


@users.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="May use the admin API with its keys.")
@click.option("--unlimited", is_flag=True, help="Never runs out of balance (spend is still recorded).")
def users_create(email: str, admin: bool, unlimited: bool) -> None:
    """Create a user with a zero balance."""
    with store() as conn:
        user_id = register_user(conn, email, is_admin=admin, unlimited=unlimited)
    click.echo(f"created user {user_id} ({email.strip().lower()})")


@users.command("password")
@click.argument("email")
@click.password_option(help="The new password (asked twice when not given).")
def users_password(email: str, password: str) -> None:
    """Set a user's console password: how the first admin gets in when sign-up is closed."""
    problem = logins.password_problem(password, email)
    if problem:
        raise click.BadParameter(problem, param_hint="password")
    password_hash = logins.hash_password(password)
    with store() as conn:
        user = user_of(conn, email)
        logins.set_password_hash(conn, user.id, password_hash)
    click.echo(f"password set for {user.email}; they can sign in at /console/signin")


@users.command("signout")
@click.argument("email")
def users_signout(email: str) -> None:
    """Sign a user out of every console session, on every host."""
    with store() as conn:
        user = user_of(conn, email)
        logins.end_sessions(conn, user.id)
    click.echo(f"signed {user.email} out of every console session")


@users.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for scripts.")
def users_show(email: str, as_json: bool) -> None:
    """Show a user's balance, budget and flags."""
    with store() as conn:
        user = user_of(conn, email)
    if as_json:
        echo_json(user)
        return
    flags = [name for name in ("is_admin", "unlimited") if getattr(user, name)]
    click.echo(f"user {user.id}: {user.email} {' '.join(flags)}".rstrip())
    click.echo(f"balance   {usd(user.balance_micros)} USD")
    click.echo(f"held      {usd(user.held_micros)} USD")
    click.echo(f"available {usd(user.available_micros)} USD")
    spent, resets = user.period_spent_micros, user.period_resets_at
    click.echo(f"budget    {budget_line(user.budget_micros, user.budget_period, spent, resets)}")
    click.echo(f"created   {user.created_at.isoformat()}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, for scripts.")
def users_list(as_json: bool) -> None:
    """List users with their balances."""
    with store() as conn:
        rows = list_users(conn)
    if as_json:
        echo_json(rows)
        return
    click.echo(f"{'ID':>5}  {'EMAIL':<32} {'BALANCE USD':>16} {'HELD USD':>14}  FLAGS")
    for u in rows:
        flags = " ".join(name for name in ("is_admin", "unlimited") if getattr(u, name))
        click.echo(f"{u.id:>5}  {u.email:<32} {usd(u.balance_micros):>16} {usd(u.held_micros):>14}  {flags}")


@users.command("limits")
@click.argument("email")
@rate_limit_options
def users_limits(email: str, **limits: str | None) -> None:
    """Set a user's rate limits, shared by all of the user's keys."""
    with store() as conn:
        set_limits(conn, "user", user_of(conn, email).id, limits)
    click.echo(f"{email}: " + ", ".join(f"{k}={v}" for k, v in limits.items() if v is not None))


@users.command("budget")
@click.argument("email")
@budget_options
def users_budget(email: str, budget: str | None, period: str | None) -> None:
    """Set a user's periodic budget, shared by all of the user's keys (team keys included)."""
    amount, kind = require_budget(budget, period)
    with store() as conn:
        user = user_of(conn, email)
        budgets.set_budget(conn, "user", user.id, amount, kind)
    click.echo(f"{user.email}: budget {'none' if amount is None else f'{usd(amount)} USD a {kind}'}")


# ignore_unknown_options lets a debit be typed as `gateway credit EMAIL -5` rather than `-- -5`.
@click.command("credit", context_settings={"ignore_unknown_options": True})
@click.argument("email")
@click.argument("usd_amount", metavar="USD")
@click.option("--note", default="", help="Why: kept with the ledger entry.")
def credit(email: str, usd_amount: str, note: str) -> None:
    """Add USD to a user's balance, or take it away with a negative amount."""
    amount = micros(usd_amount)
    if amount == 0:
        raise click.BadParameter("the amount must not be zero", param_hint="USD")
    with store() as conn:
        user = user_of(conn, email)
        balance = billing.credit(conn, user.id, amount, note, clock.utcnow())
    click.echo(f"credited {usd(amount)} USD to {user.email}; balance now {usd(balance)} USD")

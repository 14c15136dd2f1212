"""The `gateway` command: gateway NOUN VERB (db init, keys create/list/revoke)."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from gateway import accounts
from gateway.config import ConfigError, load_settings
from gateway.db import Database


def _db() -> Database:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    return Database(settings.database_url, pool_size=1)


def _usd_to_micros(value: str) -> int:
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise click.BadParameter(f"{value!r} is not an amount of USD") from None
    if not amount.is_finite():
        raise click.BadParameter(f"{value!r} is not an amount of USD")
    return int((amount * 1_000_000).to_integral_value())


def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date such as 2027-01-31") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@click.group()
def main() -> None:
    """Run and administer the gateway."""


@main.group()
def db() -> None:
    """The database."""


@db.command("init")
def db_init() -> None:
    """Create the tables that do not exist yet (safe to run again)."""
    database = _db()
    database.create_schema()
    with database.session_scope() as conn:
        accounts.local_user_id(conn)
    click.echo("database ready")


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", default="", help="A label to tell keys apart.")
@click.option("--user", "email", default=None, help="Owner's email (default: the local user).")
@click.option("--limit", default=None, help="Spend limit of this key, in USD.")
@click.option("--expires", default=None, help="Expiry date (ISO 8601, UTC).")
@click.option("--models", default=None, help="Comma-separated provider:model ids it may use.")
def keys_create(
    name: str, email: str | None, limit: str | None, expires: str | None, models: str | None
) -> None:
    """Create a key and print it once, as the last line."""
    database = _db()
    with database.session_scope() as conn:
        if email is None:
            user_id = accounts.local_user_id(conn)
        else:
            user = accounts.find_user(conn, email)
            if user is None:
                raise click.ClickException(f"no user {email}; create it with gateway users create")
            user_id = user.id
        key_id, minted = accounts.create_key(
            conn,
            user_id,
            name=name,
            limit_micros=None if limit is None else _usd_to_micros(limit),
            expires_at=None if expires is None else _date(expires),
            allowed_models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
        )
    click.echo(f"created key {key_id} ({minted.prefix}…); it is shown once, store it now:", err=True)
    click.echo(minted.secret)


@keys.command("list")
def keys_list() -> None:
    """List keys by id, prefix and state; never a full key."""
    with _db().session_scope() as conn:
        rows = accounts.list_keys(conn)
    click.echo(f"{'ID':>5}  {'PREFIX':<12} {'STATE':<8} {'USER':<28} NAME")
    for row in rows:
        state = "revoked" if row.revoked_at else "disabled" if row.disabled else "active"
        click.echo(f"{row.id:>5}  {row.prefix + '…':<12} {state:<8} {row.email:<28} {row.name}")


@keys.command("revoke")
@click.argument("id_or_prefix")
def keys_revoke(id_or_prefix: str) -> None:
    """Revoke a key by its id or display prefix."""
    with _db().session_scope() as conn:
        count = accounts.revoke_key(conn, id_or_prefix)
    if count == 0:
        raise click.ClickException(f"no active key matches {id_or_prefix!r}")
    click.echo(f"revoked {count} key(s); running gateways stop accepting it within seconds")

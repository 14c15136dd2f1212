"""The `gateway` command: gateway NOUN VERB (db, users, credit, keys, usage, holds).

Amounts are typed in USD and stored as integer micro-USD; --json output is for scripts and stays stable.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import click

from gateway import clock
from gateway.config.settings import Settings, load_settings
from gateway.errors import ConfigError, GatewayError
from gateway.relay.spool import Spool
from gateway.routing.catalog import Catalog
from gateway.store import aggregates, billing, logins, ratelimit, usage
from gateway.store.database import Database
from gateway.store.keys import create_key, list_keys, revoke_key
from gateway.store.records import Record
from gateway.store.users import UserRecord, list_users, local_user_id, register_user


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


@contextmanager
def _store(database: Database | None = None) -> Iterator[Any]:
    """Run one transaction; the gateway's own errors become a one-line message and exit status 1."""
    database = database or Database(_settings().database_url, pool_size=1)
    try:
        with database.session_scope() as conn:
            yield conn
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        database.dispose()


def _micros(value: str, *, negative: bool = True) -> int:
    try:
        micros = billing.micros_from_usd(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if micros < 0 and not negative:
        raise click.BadParameter(f"{value!r} is negative")
    return micros


def _usd(micros: int | None) -> str:
    return "-" if micros is None else f"{Decimal(micros) / 1_000_000:.6f}"


def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date such as 2027-01-31") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _user(conn: Any, email: str) -> UserRecord:
    found = list_users(conn, email=email)
    if not found:
        raise click.ClickException(f"no user {email}; create it with gateway users create")
    return found[0]


def _limit(value: str) -> int | None:
    if value.lower() == "none":
        return None
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter(f"{value!r} is not a positive whole number or 'none'")
    return int(value)


def _rate_limit_options(command: Any) -> Any:
    """Add --rpm, --tpm and --concurrency: a positive number, or 'none' to clear the limit."""
    for flag, field in (("--concurrency", "max_concurrent"), ("--tpm", "tpm_limit"), ("--rpm", "rpm_limit")):
        what = {"rpm_limit": "Requests per minute", "tpm_limit": "Tokens per minute"}.get(
            field, "Requests in flight at once"
        )
        command = click.option(flag, field, default=None, help=f"{what} ('none': no limit).")(command)
    return command


def _set_limits(conn: Any, kind: str, subject_id: int, options: dict[str, str | None]) -> None:
    values = {name: _limit(value) for name, value in options.items() if value is not None}
    ratelimit.set_limits(conn, kind, subject_id, **values)


def _echo_json(data: Record | Sequence[Record]) -> None:
    plain = data.to_json() if isinstance(data, Record) else [r.to_json() for r in data]
    click.echo(json.dumps(plain, indent=2))


@click.group()
def main() -> None:
    """Run and administer the gateway."""


@main.group()
def db() -> None:
    """The database."""


@db.command("init")
def db_init() -> None:
    """Create the tables that do not exist yet (safe to run again)."""
    database = Database(_settings().database_url, pool_size=1)
    database.create_schema()
    with _store(database) as conn:
        local_user_id(conn)
    click.echo("database ready")


@db.command("prune")
@click.option("--days", type=click.IntRange(1), default=None, help="Instead of usage_retention_days.")
def db_prune(days: int | None) -> None:
    """Delete usage rows older than the retention now, in small batches; the hourly sums stay."""
    settings = _settings()
    days = days or settings.usage_retention_days
    if days <= 0:
        raise click.ClickException("no retention: set usage_retention_days or pass --days")
    database, total, deleted = Database(settings.database_url, pool_size=1), 0, aggregates.PRUNE_BATCH
    while deleted == aggregates.PRUNE_BATCH:
        with _store(database) as conn:
            deleted = aggregates.prune_batch(conn, days, clock.utcnow())
        total += deleted
    click.echo(f"deleted {total} usage row(s) older than {days} day(s)")


@main.command("check")
def check() -> None:
    """Load the configuration as a worker would (run before each reload); exit 1 if it is broken."""
    click.echo(f"configuration ok: {len(Catalog(_settings()).targets)} model(s)")


@main.group()
def users() -> None:
    """Users: who owns keys and balances."""


@users.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="May use the admin API with its keys.")
@click.option("--unlimited", is_flag=True, help="Never runs out of balance (spend is still recorded).")
def users_create(email: str, admin: bool, unlimited: bool) -> None:
    """Create a user with a zero balance."""
    with _store() as conn:
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
    with _store() as conn:
        user = _user(conn, email)
        logins.set_password_hash(conn, user.id, password_hash)
    click.echo(f"password set for {user.email}; they can sign in at /console/signin")


@users.command("signout")
@click.argument("email")
def users_signout(email: str) -> None:
    """Sign a user out of every console session, on every host."""
    with _store() as conn:
        user = _user(conn, email)
        logins.end_sessions(conn, user.id)
    click.echo(f"signed {user.email} out of every console session")


@users.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for scripts.")
def users_show(email: str, as_json: bool) -> None:
    """Show a user's balance and flags."""
    with _store() as conn:
        user = _user(conn, email)
    if as_json:
        _echo_json(user)
        return
    flags = [name for name in ("is_admin", "unlimited") if getattr(user, name)]
    click.echo(f"user {user.id}: {user.email} {' '.join(flags)}".rstrip())
    click.echo(f"balance   {_usd(user.balance_micros)} USD")
    click.echo(f"held      {_usd(user.held_micros)} USD")
    click.echo(f"available {_usd(user.available_micros)} USD")
    click.echo(f"created   {user.created_at.isoformat()}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, for scripts.")
def users_list(as_json: bool) -> None:
    """List users with their balances."""
    with _store() as conn:
        rows = list_users(conn)
    if as_json:
        _echo_json(rows)
        return
    click.echo(f"{'ID':>5}  {'EMAIL':<32} {'BALANCE USD':>16} {'HELD USD':>14}  FLAGS")
    for u in rows:
        flags = " ".join(name for name in ("is_admin", "unlimited") if getattr(u, name))
        click.echo(
            f"{u.id:>5}  {u.email:<32} {_usd(u.balance_micros):>16} {_usd(u.held_micros):>14}  {flags}"
        )


# ignore_unknown_options lets a debit be typed as `gateway credit EMAIL -5` rather than `-- -5`.
@main.command("credit", context_settings={"ignore_unknown_options": True})
@click.argument("email")
@click.argument("usd")
@click.option("--note", default="", help="Why: kept with the ledger entry.")
def credit(email: str, usd: str, note: str) -> None:
    """Add USD to a user's balance, or take it away with a negative amount."""
    amount = _micros(usd)
    if amount == 0:
        raise click.BadParameter("the amount must not be zero", param_hint="USD")
    with _store() as conn:
        user = _user(conn, email)
        balance = billing.credit(conn, user.id, amount, note, clock.utcnow())
    click.echo(f"credited {_usd(amount)} USD to {user.email}; balance now {_usd(balance)} USD")


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", default="", help="A label to tell keys apart.")
@click.option("--user", "email", default=None, help="Owner's email (default: the local user).")
@click.option("--limit", default=None, help="Spend limit of this key, in USD.")
@click.option("--expires", default=None, help="Expiry date (ISO 8601, UTC).")
@click.option("--models", default=None, help="Comma-separated provider:model ids it may use.")
@_rate_limit_options
def keys_create(
    name: str,
    email: str | None,
    limit: str | None,
    expires: str | None,
    models: str | None,
    **limits: str | None,
) -> None:
    """Create a key and print it once, as the last line."""
    limit_micros = None if limit is None else _micros(limit, negative=False)
    expires_at = None if expires is None else _date(expires)
    with _store() as conn:
        user_id = local_user_id(conn) if email is None else _user(conn, email).id
        key_id, minted = create_key(
            conn,
            user_id,
            name=name,
            limit_micros=limit_micros,
            expires_at=expires_at,
            allowed_models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
        )
        _set_limits(conn, "key", key_id, limits)
    click.echo(f"created key {key_id} ({minted.prefix}…); it is shown once, store it now:", err=True)
    click.echo(minted.secret)


@keys.command("list")
@click.option("--user", "email", default=None, help="Only this user's keys.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, for scripts.")
def keys_list(email: str | None, as_json: bool) -> None:
    """List keys by id, prefix, state and spend; never a full key."""
    with _store() as conn:
        user_id = None if email is None else _user(conn, email).id
        rows = list_keys(conn, user_id=user_id)
    if as_json:
        _echo_json(rows)
        return
    click.echo(
        f"{'ID':>5}  {'PREFIX':<12} {'STATE':<8} {'USER':<28} {'SPENT USD':>14} {'LIMIT USD':>14}  NAME"
    )
    for k in rows:
        click.echo(
            f"{k.id:>5}  {k.prefix + '…':<12} {k.state:<8} {k.email:<28}"
            f" {_usd(k.spent_micros):>14} {_usd(k.limit_micros):>14}  {k.name}"
        )


@keys.command("limits")
@click.argument("key_id", type=int)
@_rate_limit_options
def keys_limits(key_id: int, **limits: str | None) -> None:
    """Set a key's rate limits; running gateways apply them within the key cache's lifetime."""
    with _store() as conn:
        _set_limits(conn, "key", key_id, limits)
    click.echo(f"key {key_id}: " + ", ".join(f"{k}={v}" for k, v in limits.items() if v is not None))


@users.command("limits")
@click.argument("email")
@_rate_limit_options
def users_limits(email: str, **limits: str | None) -> None:
    """Set a user's rate limits, shared by all of the user's keys."""
    with _store() as conn:
        _set_limits(conn, "user", _user(conn, email).id, limits)
    click.echo(f"{email}: " + ", ".join(f"{k}={v}" for k, v in limits.items() if v is not None))


@keys.command("revoke")
@click.argument("id_or_prefix")
def keys_revoke(id_or_prefix: str) -> None:
    """Revoke a key by its id or display prefix."""
    with _store() as conn:
        count = revoke_key(conn, id_or_prefix)
    if count == 0:
        raise click.ClickException(f"no active key matches {id_or_prefix!r}")
    click.echo(f"revoked {count} key(s); running gateways stop accepting it within seconds")


@main.command("usage")
@click.option("--user", "email", default=None, help="Only this user's requests.")
@click.option("--since", default=None, help="From this date or time on (ISO 8601, UTC).")
@click.option("--limit", default=usage.DEFAULT_LIMIT, type=click.IntRange(1, usage.MAX_LIMIT))
@click.option("--by", "group_by", type=click.Choice(usage.GROUPS), help="Sums per user, key, model or day.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, for scripts.")
def usage_command(
    email: str | None, since: str | None, limit: int, group_by: str | None, as_json: bool
) -> None:
    """Show recent requests, newest first, or their sums with --by."""
    since_at = None if since is None else _date(since)
    with _store() as conn:
        user_id = None if email is None else _user(conn, email).id
        if group_by:
            sums = usage.summarize(conn, group_by, user_id=user_id, since=since_at)
        else:
            rows = usage.list_usage(conn, user_id=user_id, since=since_at, limit=limit)
    if group_by:
        _echo_json(sums) if as_json else _echo_sums(sums, group_by)
    else:
        _echo_json(rows) if as_json else _echo_rows(rows)


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
            f" {r.prompt_tokens:>7} {r.completion_tokens:>7} {_usd(r.cost_micros):>12}"
            f" {r.status:>6}  {r.outcome} {marks}".rstrip()
        )


def _echo_sums(rows: list[usage.UsageSum], group_by: str) -> None:
    label = {"user": "email", "key": "key_prefix", "model": "model", "day": "day"}[group_by]
    click.echo(f"{group_by.upper():<32} {'REQUESTS':>9} {'PROMPT':>12} {'COMPLETION':>12} {'COST USD':>14}")
    for r in rows:
        click.echo(
            f"{getattr(r, label):<32} {r.requests:>9} {r.prompt_tokens:>12} {r.completion_tokens:>12}"
            f" {_usd(r.cost_micros):>14}"
        )


@main.group()
def holds() -> None:
    """Amounts held for requests in flight."""


@holds.command("sweep")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=None,
    help="Release holds not refreshed for this many seconds (default: the hold_timeout setting).",
)
def holds_sweep(older_than: float | None) -> None:
    """Release holds left by dead workers, recording each as an abandoned request.

    A running request's worker refreshes its hold, and this host's spooled settlements are kept.
    """
    settings = _settings()
    seconds = settings.hold_timeout if older_than is None else older_than
    keep = Spool(settings.spool_dir).holds()
    with _store(Database(settings.database_url, pool_size=1)) as conn:
        count = billing.sweep(conn, timedelta(seconds=seconds), clock.utcnow(), keep)
    click.echo(f"released {count} hold(s) not refreshed for {seconds:g} s")

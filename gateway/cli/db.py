"""`gateway db init|prune` and `gateway check`: the database's schema and retention, the config."""

from __future__ import annotations

import click

from gateway import clock
from gateway.cli.session import settings, store
from gateway.routing.catalog import Catalog
from gateway.store import aggregates
from gateway.store.database import Database
from gateway.store.users import local_user_id


@click.group("db")
def db() -> None:
    """The database."""


@db.command("init")
def db_init() -> None:
    """Create the tables that do not exist yet (safe to run again)."""
    database = Database(settings().database_url, pool_size=1)
    database.create_schema()
    with store(database) as conn:
        local_user_id(conn)
    click.echo("database ready")


@db.command("prune")
@click.option("--days", type=click.IntRange(1), default=None, help="Instead of usage_retention_days.")
def db_prune(days: int | None) -> None:
    """Delete usage rows older than the retention now, in small batches; the hourly and daily sums stay."""
    loaded = settings()
    days = days or loaded.usage_retention_days
    if days <= 0:
        raise click.ClickException("no retention: set usage_retention_days or pass --days")
    database, total, deleted = Database(loaded.database_url, pool_size=1), 0, aggregates.PRUNE_BATCH
    while deleted == aggregates.PRUNE_BATCH:
        with store(database) as conn:
            deleted = aggregates.prune_batch(conn, days, clock.utcnow())
        total += deleted
    click.echo(f"deleted {total} usage row(s) older than {days} day(s)")


@click.command("check")
def check() -> None:
    """Load the configuration as a worker would (run before each reload); exit 1 if it is broken."""
    click.echo(f"configuration ok: {len(Catalog(settings()).targets)} model(s)")

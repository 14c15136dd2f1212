"""`gateway holds sweep`: release the holds of dead workers."""

from __future__ import annotations

from datetime import timedelta

import click

from gateway import clock
from gateway.cli.session import settings, store
from gateway.relay.spool import Spool
from gateway.store import billing
from gateway.store.database import Database


@click.group("holds")
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
    loaded = settings()
    seconds = loaded.hold_timeout if older_than is None else older_than
    keep = Spool(loaded.spool_dir).holds()
    with store(Database(loaded.database_url, pool_size=1)) as conn:
        count = billing.sweep(conn, timedelta(seconds=seconds), clock.utcnow(), keep)
    click.echo(f"released {count} hold(s) not refreshed for {seconds:g} s")

"""What every command needs: the settings, one transaction on the store, and a user by email."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from gateway.config.settings import Settings, load_settings
from gateway.errors import ConfigError, GatewayError
from gateway.store.database import Database
from gateway.store.users import UserRecord, list_users


def settings() -> Settings:
    """Load the settings, or exit with the configuration's problem."""
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


@contextmanager
def store(database: Database | None = None) -> Iterator[Any]:
    """Run one transaction; the gateway's own errors become a one-line message and exit status 1."""
    database = database or Database(settings().database_url, pool_size=1)
    try:
        with database.session_scope() as conn:
            yield conn
    except GatewayError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        database.dispose()


def user_of(conn: Any, email: str) -> UserRecord:
    """Return the user with this email, or exit saying how to create one."""
    found = list_users(conn, email=email)
    if not found:
        raise click.ClickException(f"no user {email}; create it with gateway users create")
    return found[0]

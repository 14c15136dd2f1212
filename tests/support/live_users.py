"""A live gateway's users: one made with credit and a key, and the usage rows it leaves."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import create_engine, select

from gateway.store.tables import usage_records, users
from tests.fakes.gateway_server import GatewayServer


def new_user(gateway: GatewayServer) -> tuple[str, str]:
    """Create a user credited with 10 USD and a key; return the email and the key."""
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    gateway.cli("users", "create", email)
    gateway.cli("credit", email, "10")
    return email, gateway.create_key("--user", email)


def rows_of(gateway: GatewayServer, email: str, count: int, timeout: float = 5.0) -> list:
    """Return the user's usage rows once there are `count` (a stream settles as it ends)."""
    engine = create_engine(gateway.database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                user_id = conn.execute(select(users.c.id).where(users.c.email == email)).scalar_one()
                query = (
                    select(usage_records)
                    .where(usage_records.c.user_id == user_id)
                    .order_by(usage_records.c.id)
                )
                rows = list(conn.execute(query).all())
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)
    finally:
        engine.dispose()

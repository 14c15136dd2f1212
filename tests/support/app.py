"""Apps under test: their config, services, accounts with keys, request bodies and error checks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update

from gateway.blueprints.services import Services
from gateway.store.keys import create_key
from gateway.store.tables import users
from gateway.store.users import create_user, local_user_id

# The built-in mock provider's echo model again, with prices, so requests cost something.
PRICED = {"priced": {"type": "mock", "models": {"echo": {"input_price": 1.0, "output_price": 2.0}}}}


def base_config(db_url: str, **extra: Any) -> dict[str, Any]:
    """Return the test config of an app on db_url, with extra laid over it."""
    config: dict[str, Any] = {"database_url": db_url, "testing": True, "key_cache_ttl": 0.0}
    config.update(extra)
    return config


def services(app) -> Services:
    return app.extensions["gateway"]


@dataclass(frozen=True)
class Account:
    user_id: int
    key_id: int
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


def make_account(
    app,
    *,
    email: str | None = None,
    balance_micros: int = 0,
    unlimited: bool = False,
    is_admin: bool = False,
    **key_options: Any,
) -> Account:
    """Create a user (or the local unlimited one) with one key."""
    with services(app).db.session_scope() as conn:
        if email is None:
            user_id = local_user_id(conn)
        else:
            user_id = create_user(conn, email, unlimited=unlimited, is_admin=is_admin)
            conn.execute(update(users).where(users.c.id == user_id).values(balance_micros=balance_micros))
        key_id, minted = create_key(conn, user_id, **key_options)
    return Account(user_id, key_id, minted.secret)


def chat(model: str = "mock:echo", content: str = "Hi there", **extra: Any) -> dict[str, Any]:
    """Return a chat completion body with one user message."""
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return body


def assert_envelope(resp, status: int, code: str | None, param: str | None = None) -> dict:
    """Check an error answer is OpenAI's envelope with this status, code and param; return its body."""
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/json"
    body = resp.get_json()
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    assert body["error"]["param"] == param
    assert body["request_id"] == resp.headers["X-Request-Id"]
    return body


class FixedClock:
    """A clock whose wall time stands still (monotonic time still runs), for tests about windows."""

    def __init__(self, now: datetime) -> None:
        self.wall = now

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return time.monotonic()

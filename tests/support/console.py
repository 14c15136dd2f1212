"""The web console as a browser uses it: users who can sign in, forms sent with their CSRF token."""

from __future__ import annotations

import re

from sqlalchemy import update
from werkzeug.security import generate_password_hash

from gateway.store import logins
from gateway.store.tables import users
from gateway.store.users import register_user
from tests.support.app import services

PASSWORD = "correct horse battery"
NEW_KEY = re.compile(r'<code class="secret" id="new-key">(sk-[A-Za-z0-9_-]+)</code>')
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client, page: str) -> str:
    """Read the CSRF token from a console page, as a browser's form would send it."""
    resp = client.get(page)
    found = _CSRF.search(resp.get_data(as_text=True))
    assert found, f"no CSRF token on {page} ({resp.status_code})"
    return found.group(1)


def post_form(client, path: str, data: dict, page: str | None = None):
    """Submit a console form with the CSRF token of the page it is on."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, page or path)})


def add_user(app, email: str, password: str = PASSWORD, *, is_admin: bool = False, balance_micros: int = 0):
    """Create a user who can sign in; a cheap hash, since tests make many."""
    with services(app).db.session_scope() as conn:
        user_id = register_user(conn, email, is_admin=is_admin)
        logins.set_password_hash(conn, user_id, generate_password_hash(password, "pbkdf2:sha256:1000"))
        conn.execute(update(users).where(users.c.id == user_id).values(balance_micros=balance_micros))
    return user_id


def signed_in(app, email: str, **options):
    """Return a test client signed in as a new user with this email."""
    add_user(app, email, **options)
    client = app.test_client()
    resp = post_form(client, "/console/signin", {"email": email, "password": PASSWORD})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client


def text(resp) -> str:
    return resp.get_data(as_text=True)

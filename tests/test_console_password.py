"""A signed-in user changes their own password in the console, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.store import logins
from gateway.store.logins import MAX_SIGNIN_ATTEMPTS, SIGNIN_WINDOW, hash_password
from gateway.store.tables import users
from tests.support.app import services
from tests.support.console import PASSWORD, add_user, csrf_token, post_form, signed_in, text

NEW = "a brand new passphrase"
EMAIL = "ada@example.com"


def stored_hash(app, email: str = EMAIL) -> str:
    with services(app).db.session_scope() as conn:
        return conn.execute(select(users.c.password_hash).where(users.c.email == email)).scalar_one()


def change(client, current: str = PASSWORD, new: str = NEW, confirm: str | None = None):
    form = {"current_password": current, "password": new, "confirm": new if confirm is None else confirm}
    return post_form(client, "/console/password", form)


def sign_in_with(app, password: str):
    return post_form(app.test_client(), "/console/signin", {"email": EMAIL, "password": password})


def test_the_page_is_linked_from_the_navigation(app):
    client = signed_in(app, EMAIL)
    assert 'href="/console/password"' in text(client.get("/console/keys"))
    page = client.get("/console/password")
    assert page.status_code == 200 and 'name="current_password"' in text(page)


def test_changing_the_password_signs_out_every_other_session(app):
    client = signed_in(app, EMAIL)
    elsewhere = signed_in(app, "bo@example.com")  # another user, untouched by Ada's change
    laptop = sign_in_with(app, PASSWORD)  # Ada's other open session
    assert laptop.status_code == 302
    old_cookie = client.get_cookie("gateway_session").value
    before = stored_hash(app)

    resp = change(client)
    assert resp.status_code == 302 and resp.location == "/console/keys"
    assert stored_hash(app) != before and stored_hash(app).startswith("scrypt:")
    keys = client.get("/console/keys")
    assert keys.status_code == 200 and "password is changed" in text(keys)

    # The session made before the change, and a stolen copy of this browser's old cookie, are refused.
    other = app.test_client()
    other.set_cookie("gateway_session", laptop.headers["Set-Cookie"].split(";")[0].split("=", 1)[1])
    assert other.get("/console/keys").location == "/console/signin?next=/console/keys"
    stolen = app.test_client()
    stolen.set_cookie("gateway_session", old_cookie)
    assert stolen.get("/console/keys").status_code == 302
    assert elsewhere.get("/console/keys").status_code == 200

    assert sign_in_with(app, PASSWORD).status_code == 401
    assert sign_in_with(app, NEW).status_code == 302


def test_a_password_set_elsewhere_also_ends_sessions(app):
    # As `gateway users password` does.
    client = signed_in(app, EMAIL)
    with services(app).db.session_scope() as conn:
        user_id = logins.find_password_hash(conn, EMAIL)[0]
        logins.set_password_hash(conn, user_id, hash_password(NEW))
    assert client.get("/console/keys").status_code == 302


def test_a_wrong_current_password_is_refused(app):
    client = signed_in(app, EMAIL)
    before = stored_hash(app)
    resp = change(client, current="not my password")
    assert resp.status_code == 401 and "not your current password" in text(resp)
    assert stored_hash(app) == before
    assert client.get("/console/keys").status_code == 200  # still signed in


@pytest.mark.parametrize(
    "new, confirm, message",
    [
        (NEW, NEW + "x", "The passwords differ"),
        ("short", "short", "Use 10 to 200 characters"),
        ("x" * 201, "x" * 201, "Use 10 to 200 characters"),
        (EMAIL, EMAIL, "must not be your email"),
        ("", "", "This field is required"),
    ],
)
def test_a_new_password_is_held_to_the_sign_up_rules(app, new, confirm, message):
    client = signed_in(app, EMAIL)
    before = stored_hash(app)
    resp = change(client, new=new, confirm=confirm)
    assert resp.status_code == 400 and message in text(resp)
    assert stored_hash(app) == before


def test_the_form_needs_its_csrf_token(app):
    client = signed_in(app, EMAIL)
    before = stored_hash(app)
    form = {"current_password": PASSWORD, "password": NEW, "confirm": NEW}
    resp = client.post("/console/password", data=form)
    assert resp.status_code == 400 and "CSRF" in text(resp)
    assert stored_hash(app) == before


def test_visitors_are_sent_to_sign_in(app, client):
    add_user(app, EMAIL)
    assert client.get("/console/password").location == "/console/signin?next=/console/password"
    token = csrf_token(client, "/console/signin")
    form = {"current_password": PASSWORD, "password": NEW, "confirm": NEW, "csrf_token": token}
    resp = client.post("/console/password", data=form)
    assert resp.status_code == 302 and resp.location.startswith("/console/signin")


def test_guessing_the_current_password_meets_the_sign_in_limit(app):
    client = signed_in(app, EMAIL)
    before = stored_hash(app)
    for i in range(MAX_SIGNIN_ATTEMPTS):
        assert change(client, current=f"guess {i}").status_code == 401
    refused = change(client)  # even the right password, until the window ends
    assert refused.status_code == 429 and "Too many sign-in attempts" in text(refused)
    assert 0 < int(refused.headers["Retry-After"]) <= SIGNIN_WINDOW.total_seconds()
    assert stored_hash(app) == before
    # The limit is the sign-in's own: the same account and address cannot sign in either.
    assert sign_in_with(app, PASSWORD).status_code == 429

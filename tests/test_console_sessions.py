"""Signing out ends the session in the store, so a copied cookie stops working (SQLite and PostgreSQL)."""

from __future__ import annotations

from gateway.store.users import find_user
from tests.support.app import services
from tests.support.console import PASSWORD, csrf_token, post_form, signed_in

TOKEN = "admin-token-for-tests-0123456789"


def copy_of(app, client):
    """A second browser holding a copy of client's session cookie."""
    thief = app.test_client()
    thief.set_cookie("gateway_session", client.get_cookie("gateway_session").value)
    return thief


def sign_out(client):
    return client.post("/console/signout", data={"csrf_token": csrf_token(client, "/console/keys")})


def test_a_copied_cookie_stops_working_at_sign_out(app):
    client = signed_in(app, "ada@example.com")
    thief = copy_of(app, client)
    assert thief.get("/console/keys").status_code == 200
    assert sign_out(client).status_code == 302
    assert thief.get("/console/keys").location == "/console/signin?next=/console/keys"


def test_signing_in_again_after_signing_out_works(app):
    client = signed_in(app, "ada@example.com")
    sign_out(client)
    fresh = app.test_client()
    resp = post_form(fresh, "/console/signin", {"email": "ada@example.com", "password": PASSWORD})
    assert resp.status_code == 302
    assert fresh.get("/console/keys").status_code == 200


def test_admin_signs_a_user_out_everywhere(make_app):
    app = make_app(admin_token=TOKEN)
    client = signed_in(app, "ada@example.com")
    thief = copy_of(app, client)
    other = signed_in(app, "bo@example.com")
    with services(app).db.session_scope() as conn:
        user_id = find_user(conn, "ada@example.com").id
    resp = app.test_client().post(
        f"/api/admin/users/{user_id}/signout", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert resp.status_code == 200 and resp.get_json()["email"] == "ada@example.com"
    for browser in (client, thief):
        assert browser.get("/console/keys").status_code == 302
    assert other.get("/console/keys").status_code == 200

"""An admin revokes any user's key from the console's key list, on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from gateway.store.keys import get_key
from tests.support.app import Account, chat, make_account, services
from tests.support.console import csrf_token, post_form, signed_in, text

KEYS_PAGE = "/console/admin/keys"


@pytest.fixture
def app(make_app):
    # A long cache TTL: the key must stop working because the route clears the cache, not by expiry.
    return make_app(key_cache_ttl=300.0)


def revoke_path(key_id: int) -> str:
    return f"/console/admin/keys/{key_id}/revoke"


def api_status(app, account: Account) -> int:
    resp = app.test_client().post("/api/v1/chat/completions", json=chat(), headers=account.headers)
    return resp.status_code


def key_state(app, key_id: int) -> str:
    with services(app).db.session_scope() as conn:
        return get_key(conn, key_id).state


def row_of(page: str, prefix: str) -> str:
    """Return the table row of the key with this prefix on the admin keys page."""
    (row,) = re.findall(rf"<tr>(?:(?!</tr>).)*<code>{re.escape(prefix)}…</code>.*?</tr>", page, re.S)
    return row


def test_admin_revokes_another_users_key_and_it_stops_working(app):
    ada = make_account(app, email="ada@example.com", unlimited=True, name="ada-laptop")
    other = make_account(app, email="bo@example.com", unlimited=True, name="bo-ci")
    assert api_status(app, ada) == 200  # now cached for key_cache_ttl
    admin = signed_in(app, "root@example.com", is_admin=True)
    prefix = ada.secret[:10]
    before = text(admin.get(KEYS_PAGE))
    assert f'action="{revoke_path(ada.key_id)}"' in row_of(before, prefix)

    resp = post_form(admin, revoke_path(ada.key_id), {}, page=KEYS_PAGE)
    assert resp.status_code == 302 and resp.location == KEYS_PAGE
    assert api_status(app, ada) == 401
    assert api_status(app, other) == 200  # only that key
    assert key_state(app, ada.key_id) == "revoked" and key_state(app, other.key_id) == "active"

    page = text(admin.get(KEYS_PAGE))
    assert f"The key {prefix}… (ada-laptop) of ada@example.com is revoked." in page
    assert ada.secret not in page
    row = row_of(page, prefix)
    assert ">revoked</span>" in row and "/revoke" not in row and "Revoke</button>" not in row


def test_revoking_again_or_an_unknown_key_is_a_404_page(app):
    ada = make_account(app, email="ada@example.com", unlimited=True)
    admin = signed_in(app, "root@example.com", is_admin=True)
    assert post_form(admin, revoke_path(ada.key_id), {}, page=KEYS_PAGE).status_code == 302
    token = csrf_token(admin, "/console/keys")  # no revoke form is left on the keys page
    for key_id, message in [(ada.key_id, "already revoked"), (999_999, "no API key"), (2**63, "")]:
        resp = admin.post(revoke_path(key_id), data={"csrf_token": token})
        assert resp.status_code == 404 and resp.mimetype == "text/html" and message in text(resp)


def test_a_non_admin_cannot_revoke_even_with_a_valid_csrf_token(app):
    ada = make_account(app, email="ada@example.com", unlimited=True)
    bo = signed_in(app, "bo@example.com")
    token = csrf_token(bo, "/console/keys")
    for key_id in (ada.key_id, 999_999):
        resp = bo.post(revoke_path(key_id), data={"csrf_token": token})
        assert resp.status_code == 403 and "administrators only" in text(resp)
    assert key_state(app, ada.key_id) == "active" and api_status(app, ada) == 200


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(app, client):
    ada = make_account(app, email="ada@example.com", unlimited=True)
    token = csrf_token(client, "/console/signin")
    resp = client.post(revoke_path(ada.key_id), data={"csrf_token": token})
    assert resp.status_code == 302 and resp.location.startswith("/console/signin?next=")
    assert key_state(app, ada.key_id) == "active"


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_revoking_needs_the_csrf_token(app, token):
    ada = make_account(app, email="ada@example.com", unlimited=True)
    admin = signed_in(app, "root@example.com", is_admin=True)
    resp = admin.post(revoke_path(ada.key_id), data={} if token is None else {"csrf_token": token})
    assert resp.status_code == 400 and "CSRF" in text(resp)
    assert key_state(app, ada.key_id) == "active" and api_status(app, ada) == 200


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/console/keys/9223372036854775808/revoke"),
        ("post", "/console/keys/9223372036854775808/revoke"),
        ("get", "/console/admin/users/9223372036854775808/credit"),
    ],
)
def test_ids_beyond_bigint_are_404_not_a_driver_overflow(app, method, path):
    # SQLite's driver cannot bind an integer of 2**63 or more: that was a 500 on the user's revoke page.
    client = signed_in(app, "root@example.com", is_admin=True)
    resp = getattr(client, method)(path, data={"csrf_token": csrf_token(client, "/console/keys")})
    # werkzeug's router answers the POST 405 (its GET twin's pattern matched first); 4xx either way.
    assert resp.status_code == (405 if method == "post" else 404)

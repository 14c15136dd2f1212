"""API Key Management in the console: a secret shown once, revocation, no one sees another's keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.store import keys
from gateway.store.users import find_user
from tests.support.app import PRICED, chat, make_account, services
from tests.support.console import NEW_KEY, csrf_token, post_form, signed_in, text


@pytest.fixture
def app(make_app):
    return make_app(providers=PRICED)


def create_key(client, **fields) -> tuple[int, str]:
    """Create a key through the form; return the status and the page."""
    resp = post_form(client, "/console/keys", {"name": "laptop", **fields})
    return resp.status_code, text(resp)


def own_keys(app, email: str) -> list[dict]:
    with services(app).db.session_scope() as conn:
        return [k.to_json() for k in keys.list_keys(conn) if k.email == email]


def test_a_new_key_is_shown_once_and_works(app):
    client = signed_in(app, "ada@example.com", balance_micros=10**6)
    resp = post_form(client, "/console/keys", {"name": "laptop"})
    assert resp.status_code == 201 and resp.headers["Cache-Control"] == "no-store"
    page = text(resp)
    secret = NEW_KEY.search(page).group(1)
    assert "you will not see this again" in page and 'data-copy-target="new-key"' in page
    api = app.test_client().post(
        "/api/v1/chat/completions", json=chat("priced:echo"), headers={"Authorization": f"Bearer {secret}"}
    )
    assert api.status_code == 200
    listing = client.get("/console/keys")
    assert secret not in text(listing) and secret[:10] + "…" in text(listing)
    assert "laptop" in text(listing) and "active" in text(listing)
    (key,) = own_keys(app, "ada@example.com")
    assert key["last_used_at"] is not None and key["spent_micros"] > 0


def test_a_key_takes_its_limit_expiry_and_models(app):
    client = signed_in(app, "ada@example.com")
    expiry = (datetime.now(UTC) + timedelta(days=3)).date()
    token = csrf_token(client, "/console/keys")
    resp = client.post(
        "/console/keys",
        data={
            "name": "ci",
            "limit_usd": "2.5",
            "expires_on": expiry.isoformat(),
            "models": ["priced:echo"],
            "csrf_token": token,
        },
    )
    assert resp.status_code == 201, text(resp)
    (key,) = own_keys(app, "ada@example.com")
    assert key["limit_micros"] == 2_500_000 and key["allowed_models"] == ["priced:echo"]
    assert (
        key["expires_at"]
        == (datetime.combine(expiry, datetime.min.time(), UTC) + timedelta(days=1)).isoformat()
    )
    listing = text(client.get("/console/keys"))
    assert "$2.50" in listing and "priced:echo" in listing


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"name": ""}, "This field is required"),
        ({"limit_usd": "lots"}, "Enter an amount of USD"),
        ({"limit_usd": "0.0000001"}, "Enter an amount of USD"),
        ({"limit_usd": "-1"}, "must not be negative"),
        ({"expires_on": "2001-01-01"}, "in the past"),
        ({"models": "openai:gpt-nope"}, "is not a valid choice"),
    ],
)
def test_bad_key_forms_are_refused_with_a_reason(app, fields, message):
    client = signed_in(app, "ada@example.com")
    status, page = create_key(client, **fields)
    assert status == 400 and message in page and 'id="new-key"' not in page
    assert own_keys(app, "ada@example.com") == []


def test_revoking_asks_first_then_stops_the_key(app):
    client = signed_in(app, "ada@example.com", balance_micros=10**6)
    secret = NEW_KEY.search(create_key(client)[1]).group(1)
    (key,) = own_keys(app, "ada@example.com")
    confirm = client.get(f"/console/keys/{key['id']}/revoke")
    assert confirm.status_code == 200 and "cannot be brought back" in text(confirm)
    assert own_keys(app, "ada@example.com")[0]["state"] == "active"  # asking changed nothing
    resp = post_form(client, f"/console/keys/{key['id']}/revoke", {})
    assert resp.status_code == 302 and resp.location == "/console/keys"
    assert "is revoked" in text(client.get("/console/keys"))
    assert own_keys(app, "ada@example.com")[0]["state"] == "revoked"
    api = app.test_client().post(
        "/api/v1/chat/completions", json=chat("priced:echo"), headers={"Authorization": f"Bearer {secret}"}
    )
    assert api.status_code == 401


def test_no_user_can_see_or_touch_another_users_keys(app):
    ada = signed_in(app, "ada@example.com", balance_micros=10**6)
    bo = signed_in(app, "bo@example.com")
    ada_secret = NEW_KEY.search(create_key(ada, name="ada-secret-project")[1]).group(1)
    (ada_key,) = own_keys(app, "ada@example.com")
    app.test_client().post(
        "/api/v1/chat/completions",
        json=chat("priced:echo"),
        headers={"Authorization": f"Bearer {ada_secret}", "X-Request-Id": "req-ada-private-0001"},
    )
    bo_keys = text(bo.get("/console/keys"))
    assert "ada-secret-project" not in bo_keys and ada_key["prefix"] not in bo_keys
    assert "req-ada-private-0001" not in text(bo.get("/console/usage"))
    assert "req-ada-private-0001" in text(ada.get("/console/usage"))
    assert bo.get(f"/console/keys/{ada_key['id']}/revoke").status_code == 404
    token = csrf_token(bo, "/console/keys")
    assert bo.post(f"/console/keys/{ada_key['id']}/revoke", data={"csrf_token": token}).status_code == 404
    assert own_keys(app, "ada@example.com")[0]["state"] == "active"


def test_keys_made_elsewhere_show_only_their_prefix(app):
    client = signed_in(app, "ada@example.com")
    with services(app).db.session_scope() as conn:
        user_id = find_user(conn, "ada@example.com").id
    made = make_account(app)  # the local user's key: not Ada's
    with services(app).db.session_scope() as conn:
        _, minted = keys.create_key(conn, user_id, name="from-the-cli")
    page = text(client.get("/console/keys"))
    assert "from-the-cli" in page and minted.prefix in page and minted.secret not in page
    assert made.secret[:10] not in page

"""The admin API under /api/admin, on SQLite and PostgreSQL: permissions, users, credit, keys, usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from gateway.store.tables import api_keys, ledger_entries, usage_records
from tests.support.admin import TOKEN, TOKEN_HEADERS, call_chat, create_key, create_user
from tests.support.app import PRICED, assert_envelope, make_account, services


@pytest.fixture
def app(make_app):
    return make_app(providers=PRICED, admin_token=TOKEN)


@pytest.fixture
def account(app):
    """A key of an unlimited admin user (the local user is no admin)."""
    return make_account(app, email="root@example.com", unlimited=True, is_admin=True)


@pytest.fixture
def admin(app, account):
    """Call the admin API with an admin user's key; returns the response."""
    client = app.test_client()

    def call(method: str, path: str, json=None, headers=None):
        return client.open("/api/admin" + path, method=method, json=json, headers=headers or account.headers)

    return call


def count(app, table) -> int:
    with services(app).db.session_scope() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


ENDPOINTS = [
    ("GET", "/users", None),
    ("POST", "/users", {"email": "new-{n}@example.com"}),
    ("GET", "/users/{user}", None),
    ("POST", "/users/{user}/credit", {"amount_usd": 1}),
    ("GET", "/keys", None),
    ("POST", "/keys", {"user_id": "{user}"}),
    ("POST", "/keys/{key}/revoke", None),
    ("PATCH", "/keys/{key}", {"name": "x"}),
    ("GET", "/usage", None),
    ("GET", "/usage/summary?group_by=day", None),
]


@pytest.mark.parametrize("method, path, body", ENDPOINTS)
def test_admin_api_is_closed_to_everyone_but_admins(app, admin, method, path, body):
    user = make_account(app, email="user@example.com", balance_micros=10**6)

    def request(n: int) -> tuple[str, dict | None]:
        filled = {k: v.format(n=n, user=user.user_id) for k, v in (body or {}).items() if isinstance(v, str)}
        if filled.get("user_id"):
            filled["user_id"] = int(filled["user_id"])
        return path.format(user=user.user_id, key=user.key_id), None if body is None else {**body, **filled}

    for n, (headers, status, code) in enumerate(
        [
            ({}, 401, "invalid_api_key"),
            ({"Authorization": "Bearer wrong-token"}, 401, "invalid_api_key"),
            ({"Authorization": "Bearer " + TOKEN[:-1]}, 401, "invalid_api_key"),
            (user.headers, 403, "permission_denied"),
        ]
    ):
        url, json = request(n)
        resp = app.test_client().open("/api/admin" + url, method=method, json=json, headers=headers)
        assert_envelope(resp, status, code)
    assert count(app, ledger_entries) == 0
    assert count(app, api_keys) == 2
    for n, headers in enumerate((None, TOKEN_HEADERS)):
        url, json = request(10 + n)
        resp = admin(method, url, json, headers=headers)
        assert resp.status_code < 300, resp.get_data(as_text=True)


def test_empty_admin_token_disables_the_token_path(make_app):
    app = make_app(admin_token="")
    for header in ("Bearer ", "Bearer", "Bearer  "):
        resp = app.test_client().get("/api/admin/users", headers={"Authorization": header})
        assert_envelope(resp, 401, "invalid_api_key")


def test_create_get_and_list_users(app, admin):
    user = create_user(admin, " Ada@Example.com ", is_admin=True, credit_usd="2.5", note="welcome")
    assert user["email"] == "ada@example.com"
    assert (user["balance_micros"], user["held_micros"], user["available_micros"]) == (
        2_500_000,
        0,
        2_500_000,
    )
    assert user["is_admin"] is True and user["unlimited"] is False
    assert datetime.fromisoformat(user["created_at"]).tzinfo is not None
    assert not any("password" in name or "hash" in name for name in user)
    assert admin("GET", f"/users/{user['id']}").get_json() == user
    listed = admin("GET", "/users").get_json()
    assert listed["object"] == "list"
    assert [u["email"] for u in listed["data"]] == ["root@example.com", "ada@example.com"]
    with services(app).db.session_scope() as conn:
        rows = conn.execute(select(ledger_entries.c.amount_micros, ledger_entries.c.note)).all()
    assert [tuple(r) for r in rows] == [(2_500_000, "welcome")]


def test_created_admin_user_can_use_the_admin_api(app, admin):
    user = create_user(admin, is_admin=True)
    key = create_key(admin, user["id"])
    resp = app.test_client().get("/api/admin/users", headers={"Authorization": f"Bearer {key['key']}"})
    assert resp.status_code == 200


def test_duplicate_email_is_409(admin):
    create_user(admin)
    resp = admin("POST", "/users", {"email": "ADA@example.com"})
    assert_envelope(resp, 409, "email_taken", "email")


@pytest.mark.parametrize(
    "body, param",
    [
        ({}, "email"),
        ({"email": 5}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b.c", "is_admin": "yes"}, "is_admin"),
        ({"email": "a@b.c", "unlimited": 1}, "unlimited"),
        ({"email": "a@b.c", "credit_usd": "abc"}, "credit_usd"),
        ({"email": "a@b.c", "credit_usd": -1}, "credit_usd"),
        ({"email": "a@b.c", "credit_micros": 1.5}, "credit_micros"),
        ({"email": "a@b.c", "credit_usd": 1, "credit_micros": 1}, "credit_micros"),
        ({"email": "a@b.c", "note": 7}, "note"),
        ({"email": "a@b.c", "password_hash": "x"}, "password_hash"),
    ],
)
def test_create_user_validates_every_field(app, admin, body, param):
    assert_envelope(admin("POST", "/users", body), 400, "invalid_request", param)
    assert len(admin("GET", "/users").get_json()["data"]) == 1


def test_create_user_needs_a_json_body(app, account):
    resp = app.test_client().post(
        "/api/admin/users", data="email=a@b.c", headers={**account.headers, "Content-Type": "text/plain"}
    )
    assert_envelope(resp, 415, "unsupported_media_type")


@pytest.mark.parametrize("path", ["/users/999", "/users/99999999999999999999", "/users/0", "/users/abc"])
def test_unknown_user_is_404(admin, path):
    resp = admin("GET", path)
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] in ("user_not_found", "not_found")


def test_credit_changes_the_balance_with_ledger_entries(app, admin):
    user = create_user(admin)
    resp = admin("POST", f"/users/{user['id']}/credit", {"amount_usd": 1.25, "note": "invoice 7"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["amount_micros"], body["note"]) == (1_250_000, "invoice 7")
    assert body["user"]["balance_micros"] == 1_250_000
    resp = admin("POST", f"/users/{user['id']}/credit", {"amount_micros": -250_000, "note": "fix"})
    assert resp.get_json()["user"]["balance_micros"] == 1_000_000
    assert admin("GET", f"/users/{user['id']}").get_json()["balance_micros"] == 1_000_000
    with services(app).db.session_scope() as conn:
        rows = conn.execute(
            select(ledger_entries.c.amount_micros, ledger_entries.c.note).order_by(ledger_entries.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [(1_250_000, "invoice 7"), (-250_000, "fix")]


@pytest.mark.parametrize(
    "body, param, code",
    [
        ({}, "amount_micros", "invalid_request"),
        ({"amount_usd": 0}, "amount_usd", "invalid_request"),
        ({"amount_usd": "ten"}, "amount_usd", "invalid_request"),
        ({"amount_usd": True}, "amount_usd", "invalid_request"),
        ({"amount_usd": 0.0000001}, "amount_usd", "invalid_request"),
        ({"amount_micros": "5"}, "amount_micros", "invalid_request"),
        ({"amount_micros": 5, "amount_usd": 5}, "amount_micros", "invalid_request"),
        ({"amount_micros": 5, "note": ["x"]}, "note", "invalid_request"),
        ({"amount_micros": 5, "memo": "x"}, "memo", "invalid_request"),
        ({"amount_usd": -1}, "amount_usd", "insufficient_balance"),
    ],
)
def test_credit_validates_and_changes_nothing_on_error(app, admin, body, param, code):
    user = create_user(admin, credit_micros=500_000)
    assert_envelope(admin("POST", f"/users/{user['id']}/credit", body), 400, code, param)
    assert admin("GET", f"/users/{user['id']}").get_json()["balance_micros"] == 500_000
    assert count(app, ledger_entries) == 1


def test_credit_for_unknown_user_is_404(admin):
    assert_envelope(admin("POST", "/users/999/credit", {"amount_usd": 1}), 404, "user_not_found")


def test_created_key_is_shown_once_and_works(app, admin):
    user = create_user(admin, credit_usd=1)
    resp = admin(
        "POST",
        "/keys",
        {
            "user_id": user["id"],
            "name": "laptop",
            "limit_usd": "0.5",
            "expires_at": "2099-01-31T00:00:00Z",
            "models": ["mock:echo"],
        },
    )
    assert resp.status_code == 201
    assert resp.headers["Cache-Control"] == "no-store"
    key = resp.get_json()
    secret = key["key"]
    assert secret.startswith("sk-") and key["prefix"] == secret[:10]
    assert (key["user_id"], key["name"], key["limit_micros"], key["state"]) == (
        user["id"],
        "laptop",
        500_000,
        "active",
    )
    assert key["allowed_models"] == ["mock:echo"]
    assert key["expires_at"] == "2099-01-31T00:00:00+00:00"
    assert not any("hash" in name for name in key)

    assert call_chat(app, secret).status_code == 200
    assert_envelope(call_chat(app, secret, model="priced:echo"), 403, "model_not_allowed", "model")

    for path in ("/keys", f"/keys?user_id={user['id']}", "/usage", "/users"):
        text = admin("GET", path).get_data(as_text=True)
        assert secret not in text and secret[10:] not in text
    listed = admin("GET", f"/keys?user_id={user['id']}").get_json()["data"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None
    assert [k["id"] for k in admin("GET", "/keys").get_json()["data"]][-1] == key["id"]


@pytest.mark.parametrize(
    "body, param",
    [
        ({}, "user_id"),
        ({"user_id": "1"}, "user_id"),
        ({"user_id": True}, "user_id"),
        ({"user_id": 0}, "user_id"),
        ({"user_id": 1, "name": 3}, "name"),
        ({"user_id": 1, "name": "x" * 201}, "name"),
        ({"user_id": 1, "limit_usd": -1}, "limit_usd"),
        ({"user_id": 1, "limit_micros": "1"}, "limit_micros"),
        ({"user_id": 1, "expires_at": "tomorrow"}, "expires_at"),
        ({"user_id": 1, "expires_at": 1700000000}, "expires_at"),
        ({"user_id": 1, "models": "mock:echo"}, "models"),
        ({"user_id": 1, "models": ["mock:echo,priced:echo"]}, "models"),
        ({"user_id": 1, "models": [""]}, "models"),
        ({"user_id": 1, "key": "sk-mine"}, "key"),
    ],
)
def test_create_key_validates_every_field(app, admin, body, param):
    assert_envelope(admin("POST", "/keys", body), 400, "invalid_request", param)
    assert count(app, api_keys) == 1  # only the admin fixture's key


def test_create_key_for_unknown_user_is_404(admin):
    assert_envelope(admin("POST", "/keys", {"user_id": 999}), 404, "user_not_found")


def test_revoke_takes_effect_at_once_despite_the_key_cache(make_app):
    app = make_app(providers=PRICED, admin_token=TOKEN, key_cache_ttl=60.0)
    acct = make_account(app, email="ada@example.com", balance_micros=10**6)
    client = app.test_client()
    assert call_chat(app, acct.secret).status_code == 200  # now cached for a minute
    resp = client.post(f"/api/admin/keys/{acct.key_id}/revoke", headers=TOKEN_HEADERS)
    assert resp.status_code == 200
    assert resp.get_json()["state"] == "revoked"
    assert resp.get_json()["revoked_at"] is not None
    assert_envelope(call_chat(app, acct.secret), 401, "invalid_api_key")
    again = client.post(f"/api/admin/keys/{acct.key_id}/revoke", headers=TOKEN_HEADERS)
    assert again.status_code == 200 and again.get_json()["revoked_at"] == resp.get_json()["revoked_at"]


def test_revoke_unknown_key_is_404(admin):
    assert_envelope(admin("POST", "/keys/999/revoke"), 404, "key_not_found")


def test_patch_key_changes_limits_state_expiry_and_models(make_app):
    app = make_app(providers=PRICED, admin_token=TOKEN, key_cache_ttl=60.0)
    acct = make_account(app, email="ada@example.com", balance_micros=10**6)
    client = app.test_client()

    def patch(body):
        resp = client.patch(f"/api/admin/keys/{acct.key_id}", json=body, headers=TOKEN_HEADERS)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.get_json()

    assert call_chat(app, acct.secret).status_code == 200
    assert patch({"disabled": True})["state"] == "disabled"
    assert_envelope(call_chat(app, acct.secret), 401, "invalid_api_key")
    assert patch({"disabled": False})["state"] == "active"
    assert patch({"models": ["priced:echo"]})["allowed_models"] == ["priced:echo"]
    assert_envelope(call_chat(app, acct.secret), 403, "model_not_allowed", "model")
    assert patch({"models": None})["allowed_models"] is None
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert patch({"expires_at": past})["state"] == "expired"
    assert_envelope(call_chat(app, acct.secret), 401, "invalid_api_key")
    assert patch({"expires_at": None})["expires_at"] is None
    key = patch({"limit_usd": 0.25, "name": "renamed"})
    assert (key["limit_micros"], key["name"]) == (250_000, "renamed")
    assert patch({"limit_micros": None})["limit_micros"] is None
    assert patch({})["state"] == "active"
    assert call_chat(app, acct.secret).status_code == 200


@pytest.mark.parametrize(
    "body, param",
    [
        ({"disabled": "true"}, "disabled"),
        ({"limit_usd": "lots"}, "limit_usd"),
        ({"limit_micros": -5}, "limit_micros"),
        ({"expires_at": "soon"}, "expires_at"),
        ({"models": [1]}, "models"),
        ({"user_id": 2}, "user_id"),
        ({"spent_micros": 0}, "spent_micros"),
    ],
)
def test_patch_key_validates_every_field(app, admin, account, body, param):
    assert_envelope(admin("PATCH", f"/keys/{account.key_id}", body), 400, "invalid_request", param)


def test_patch_unknown_key_is_404(admin):
    assert_envelope(admin("PATCH", "/keys/999", {"disabled": True}), 404, "key_not_found")
    assert_envelope(admin("PATCH", "/keys/999", {}), 404, "key_not_found")


def test_key_limit_is_enforced(app, admin):
    user = create_user(admin, credit_usd=10)
    tiny = create_key(admin, user["id"], limit_micros=1)
    resp = call_chat(app, tiny["key"], model="priced:echo")
    body = assert_envelope(resp, 429, "insufficient_quota")
    assert body["error"]["type"] == "insufficient_quota"
    assert resp.headers["x-should-retry"] == "false"
    assert count(app, usage_records) == 0
    assert admin("GET", f"/users/{user['id']}").get_json()["balance_micros"] == 10_000_000
    admin("PATCH", f"/keys/{tiny['id']}", {"limit_usd": 1})
    assert call_chat(app, tiny["key"], model="priced:echo").status_code == 200


def test_user_balance_is_enforced_and_credit_lifts_it(app, admin):
    user = create_user(admin)
    key = create_key(admin, user["id"])
    assert_envelope(call_chat(app, key["key"], model="priced:echo"), 429, "insufficient_quota")
    admin("POST", f"/users/{user['id']}/credit", {"amount_usd": 1})
    assert call_chat(app, key["key"], model="priced:echo").status_code == 200
    spent = admin("GET", f"/usage?user_id={user['id']}").get_json()["data"][0]["cost_micros"]
    assert spent > 0
    assert admin("GET", f"/users/{user['id']}").get_json()["balance_micros"] == 1_000_000 - spent


def test_usage_lists_rows_with_filters(app, admin):
    ada = create_user(admin, "ada@example.com", credit_usd=1)
    bob = create_user(admin, "bob@example.com", credit_usd=1)
    ada_key = create_key(admin, ada["id"])
    bob_key = create_key(admin, bob["id"])
    for secret, model in [
        (ada_key["key"], "priced:echo"),
        (ada_key["key"], "mock:echo"),
        (bob_key["key"], "priced:echo"),
    ]:
        assert call_chat(app, secret, model=model).status_code == 200
    rows = admin("GET", "/usage").get_json()["data"]
    assert len(rows) == 3
    assert [r["email"] for r in rows] == ["bob@example.com", "ada@example.com", "ada@example.com"]
    assert {"request_id", "model", "cost_micros", "status", "outcome", "created_at"} <= set(rows[0])
    assert all(datetime.fromisoformat(r["created_at"]).tzinfo is not None for r in rows)

    def ids(query: str) -> list[str]:
        return [r["request_id"] for r in admin("GET", "/usage" + query).get_json()["data"]]

    assert ids(f"?user_id={ada['id']}") == [rows[1]["request_id"], rows[2]["request_id"]]
    assert ids(f"?key_id={bob_key['id']}") == [rows[0]["request_id"]]
    assert ids("?model=mock:echo") == [rows[1]["request_id"]]
    assert ids(f"?user_id={ada['id']}&model=priced:echo") == [rows[2]["request_id"]]
    assert ids("?limit=1") == [rows[0]["request_id"]]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert ids(f"?since={tomorrow}") == []
    assert len(ids("?since=2000-01-01T00:00:00Z")) == 3
    assert ids("?user_id=999") == []


@pytest.mark.parametrize(
    "query, param",
    [
        ("?user_id=abc", "user_id"),
        ("?user_id=-1", "user_id"),
        ("?key_id=1.5", "key_id"),
        ("?key_id=" + "9" * 5000, "key_id"),
        ("?since=yesterday", "since"),
        ("?limit=0", "limit"),
        ("?limit=100000", "limit"),
    ],
)
def test_usage_validates_filters(admin, query, param):
    assert_envelope(admin("GET", "/usage" + query), 400, "invalid_request", param)
    if param != "limit":
        summary = admin("GET", "/usage/summary" + query + "&group_by=user")
        assert_envelope(summary, 400, "invalid_request", param)


def test_usage_summary_sums_per_user_key_model_and_day(app, admin):
    ada = create_user(admin, "ada@example.com", credit_usd=1)
    bob = create_user(admin, "bob@example.com", credit_usd=1)
    ada_key = create_key(admin, ada["id"], name="ada-1")
    bob_key = create_key(admin, bob["id"])
    for secret, model in [
        (ada_key["key"], "priced:echo"),
        (ada_key["key"], "priced:echo"),
        (ada_key["key"], "mock:echo"),
        (bob_key["key"], "priced:echo"),
    ]:
        assert call_chat(app, secret, model=model).status_code == 200
    rows = admin("GET", "/usage").get_json()["data"]
    total = sum(r["cost_micros"] for r in rows)
    assert total > 0

    def summary(group_by: str, query: str = "") -> list[dict]:
        resp = admin("GET", f"/usage/summary?group_by={group_by}{query}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.get_json()["group_by"] == group_by
        return resp.get_json()["data"]

    by_user = summary("user")
    assert [(s["email"], s["requests"]) for s in by_user] == [("ada@example.com", 3), ("bob@example.com", 1)]
    assert sum(s["cost_micros"] for s in by_user) == total
    assert all(isinstance(s["cost_micros"], int) for s in by_user)
    by_key = summary("key")
    assert {(s["key_id"], s["name"], s["requests"]) for s in by_key} == {
        (ada_key["id"], "ada-1", 3),
        (bob_key["id"], "", 1),
    }
    by_model = {s["model"]: s for s in summary("model")}
    assert (by_model["priced:echo"]["requests"], by_model["mock:echo"]["requests"]) == (3, 1)
    assert by_model["mock:echo"]["cost_micros"] == 0
    by_day = summary("day")
    assert [(s["day"], s["requests"], s["cost_micros"]) for s in by_day] == [
        (rows[0]["created_at"][:10], 4, total)
    ]
    assert [s["requests"] for s in summary("model", f"&user_id={bob['id']}")] == [1]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert summary("day", f"&since={tomorrow}") == []


@pytest.mark.parametrize("query", ["", "?group_by=week", "?group_by="])
def test_usage_summary_needs_a_known_group(admin, query):
    assert_envelope(admin("GET", "/usage/summary" + query), 400, "invalid_request", "group_by")

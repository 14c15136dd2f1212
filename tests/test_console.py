"""The console's sign-up, sign-in, sessions, CSRF, rate limiting and error pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import stat
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from gateway import clock
from gateway.config.settings import load_settings
from gateway.console.formatting import usd
from gateway.console.secret import load_secret_key
from gateway.errors import ConfigError
from gateway.store import logins
from gateway.store.keys import list_keys
from gateway.store.logins import MAX_SIGNIN_ATTEMPTS, SIGNIN_WINDOW
from gateway.store.tables import login_attempts, users
from gateway.store.users import list_users
from tests.support.app import chat, make_account, services
from tests.support.console import PASSWORD, add_user, csrf_token, post_form, signed_in, text


def test_root_and_console_send_visitors_to_sign_in(client):
    assert client.get("/").location == "/console/"
    assert client.get("/console/").location == "/console/signin"
    page = client.get("/console/signin")
    assert page.status_code == 200 and "Sign in" in text(page) and page.mimetype == "text/html"


def test_sign_up_creates_a_hashed_password_and_a_safe_session(app, client):
    resp = post_form(
        client,
        "/console/signup",
        {"email": " Ada@Example.com ", "password": PASSWORD, "confirm": PASSWORD},
    )
    assert resp.status_code == 302 and resp.location == "/console/keys"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    with services(app).db.session_scope() as conn:
        stored = conn.execute(
            select(users.c.password_hash).where(users.c.email == "ada@example.com")
        ).scalar()
    assert stored.startswith("scrypt:") and PASSWORD not in stored
    assert "ada@example.com" in text(client.get("/console/keys"))


@pytest.mark.parametrize(
    "form, message",
    [
        ({"email": "not-an-email", "password": PASSWORD, "confirm": PASSWORD}, "Enter an email address"),
        ({"email": "bo@example.com", "password": "short", "confirm": "short"}, "Use 10 to 200 characters"),
        (
            {"email": "bo@example.com", "password": PASSWORD, "confirm": PASSWORD + "x"},
            "The passwords differ",
        ),
        (
            {
                "email": "longname@example.com",
                "password": "longname@example.com",
                "confirm": "longname@example.com",
            },
            "must not be your email",
        ),
    ],
)
def test_sign_up_refuses_bad_emails_and_weak_passwords(app, client, form, message):
    resp = post_form(client, "/console/signup", form)
    assert resp.status_code == 400 and message in text(resp)
    with services(app).db.session_scope() as conn:
        assert list_users(conn) == []


def test_sign_up_refuses_a_taken_email(app, client):
    add_user(app, "ada@example.com")
    resp = post_form(
        client, "/console/signup", {"email": "ADA@example.com", "password": PASSWORD, "confirm": PASSWORD}
    )
    assert resp.status_code == 409 and "already has an account" in text(resp)


def test_operator_can_close_sign_up(make_app):
    app = make_app(signup="closed")
    client = app.test_client()
    page = client.get("/console/signup")
    assert page.status_code == 403 and page.mimetype == "text/html" and "Sign-up is closed" in text(page)
    token = csrf_token(client, "/console/signin")
    resp = client.post(
        "/console/signup",
        data={"email": "x@example.com", "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token},
    )
    assert resp.status_code == 403
    assert "/console/signup" not in text(client.get("/console/signin"))
    with services(app).db.session_scope() as conn:
        assert list_users(conn) == []


def test_signup_setting_comes_from_the_environment():
    assert load_settings(env={"GATEWAY_SIGNUP": "closed"}).signup == "closed"
    assert load_settings(env={"GATEWAY_COOKIE_SECURE": "true"}).cookie_secure is True
    with pytest.raises(ConfigError, match="GATEWAY_SIGNUP"):
        load_settings(env={"GATEWAY_SIGNUP": "maybe"})


def test_secure_cookie_when_configured(make_app):
    app = make_app(cookie_secure=True)
    add_user(app, "ada@example.com")
    client = app.test_client()
    resp = post_form(client, "/console/signin", {"email": "ada@example.com", "password": PASSWORD})
    assert "Secure" in resp.headers["Set-Cookie"]


def test_sign_in_refuses_wrong_password_and_unknown_email_alike(app, client):
    add_user(app, "ada@example.com")
    wrong = post_form(client, "/console/signin", {"email": "ada@example.com", "password": "wrong password"})
    unknown = post_form(client, "/console/signin", {"email": "eve@example.com", "password": PASSWORD})
    for resp in (wrong, unknown):
        assert resp.status_code == 401 and "Wrong email or password." in text(resp)
    assert client.get("/console/keys").status_code == 302


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(app, client):
    add_user(app, "ada@example.com")
    assert client.get("/console/usage").location == "/console/signin?next=/console/usage"
    token = csrf_token(client, "/console/signin")
    form = {"email": "ada@example.com", "password": PASSWORD, "csrf_token": token}
    assert client.post("/console/signin?next=/console/usage", data=form).location == "/console/usage"
    for evil in ("https://evil.example/", "//evil.example/console/", "/console/\\evil"):
        client.post("/console/signout", data={"csrf_token": csrf_token(client, "/console/keys")})
        token = csrf_token(client, "/console/signin")
        resp = client.post(f"/console/signin?next={evil}", data={**form, "csrf_token": token})
        assert resp.location == "/console/keys"


@pytest.mark.parametrize(
    "query",
    [
        b"next=/console/usage\r\nSet-Cookie:%20x=1",
        b"next=/console/usage%0D%0ASet-Cookie:%20x=1",
        b"next=/console/%09usage",
        b"next=/console/%00",
        b"next=/console/\xc2\x85",
    ],
)
def test_sign_in_with_control_characters_in_next_goes_to_the_default_page(app, client, query):
    add_user(app, "ada@example.com")
    token = csrf_token(client, "/console/signin")
    form = {"email": "ada@example.com", "password": PASSWORD, "csrf_token": token}
    # As the WSGI server hands it over: raw bytes of the request line, as latin-1.
    resp = client.post(
        "/console/signin", data=form, environ_overrides={"QUERY_STRING": query.decode("latin-1")}
    )
    assert resp.status_code == 302 and resp.location == "/console/keys"
    assert "Set-Cookie: x" not in str(resp.headers)


def test_sign_in_is_limited_per_account_across_workers(make_app):
    # Two apps on one store stand for two gunicorn workers (or two hosts).
    first, second = make_app(), make_app()
    add_user(first, "ada@example.com")
    clients = [first.test_client(), second.test_client()]
    for i in range(MAX_SIGNIN_ATTEMPTS):
        resp = post_form(
            clients[i % 2], "/console/signin", {"email": "ada@example.com", "password": f"guess {i}"}
        )
        assert resp.status_code == 401
    refused = post_form(clients[1], "/console/signin", {"email": "ADA@example.com", "password": PASSWORD})
    assert refused.status_code == 429 and "Too many sign-in attempts" in text(refused)
    assert 0 < int(refused.headers["Retry-After"]) <= SIGNIN_WINDOW.total_seconds()
    # Another account is not locked out by Ada's attacker.
    add_user(first, "bo@example.com")
    assert (
        post_form(
            clients[0], "/console/signin", {"email": "bo@example.com", "password": PASSWORD}
        ).status_code
        == 302
    )
    # When the window has passed, the right password works and the counter is forgotten.
    with services(first).db.session_scope() as conn:
        earlier = clock.utcnow() - SIGNIN_WINDOW - timedelta(seconds=1)
        conn.execute(update(login_attempts).values(window_started_at=earlier))
    ok = post_form(clients[0], "/console/signin", {"email": "ada@example.com", "password": PASSWORD})
    assert ok.status_code == 302
    with services(first).db.session_scope() as conn:
        left = set(conn.execute(select(login_attempts.c.subject)).scalars())
    # Ada's counters are forgotten; the address's is not (a guesser's own sign-in must not reset it).
    assert left == {logins.subject("@", "127.0.0.1")}


def test_attempt_counters_store_no_email(app, client):
    post_form(client, "/console/signin", {"email": "ada@example.com", "password": "nope nope nope"})
    with services(app).db.session_scope() as conn:
        subjects = conn.execute(select(login_attempts.c.subject)).scalars().all()
    assert len(subjects) == 3 and all("ada" not in s and len(s) == 64 for s in subjects)


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def guess(client, email: str, password: str = "wrong password"):
    return post_form(client, "/console/signin", {"email": email, "password": password})


def test_an_account_locked_from_one_address_still_opens_from_another(app):
    add_user(app, "ada@example.com")
    attacker = client_at(app, "203.0.113.7")
    for _ in range(MAX_SIGNIN_ATTEMPTS):
        assert guess(attacker, "ada@example.com").status_code == 401
    assert guess(attacker, "ada@example.com", PASSWORD).status_code == 429
    assert guess(client_at(app, "198.51.100.1"), "ada@example.com", PASSWORD).status_code == 302


def test_one_address_guessing_over_many_accounts_is_limited(app, monkeypatch):
    monkeypatch.setattr(logins, "MAX_ADDRESS_ATTEMPTS", 3)
    sprayer = client_at(app, "203.0.113.8")
    for i in range(3):
        assert guess(sprayer, f"user{i}@example.com").status_code == 401
    refused = guess(sprayer, "user9@example.com")
    assert refused.status_code == 429 and "your address" in text(refused)
    add_user(app, "bo@example.com")
    assert guess(client_at(app, "198.51.100.2"), "bo@example.com", PASSWORD).status_code == 302


def test_guesses_from_many_addresses_meet_the_account_limit(app, monkeypatch):
    monkeypatch.setattr(logins, "MAX_ACCOUNT_ATTEMPTS", MAX_SIGNIN_ATTEMPTS + 1)
    add_user(app, "ada@example.com")
    # One address, however busy, adds at most MAX_SIGNIN_ATTEMPTS to the account's counter.
    attacker = client_at(app, "203.0.113.9")
    for _ in range(3 * MAX_SIGNIN_ATTEMPTS):
        guess(attacker, "ada@example.com")
    assert guess(client_at(app, "198.51.100.3"), "ada@example.com", PASSWORD).status_code == 302
    # Spread over addresses, the guesses meet the account's own limit.
    for i in range(MAX_SIGNIN_ATTEMPTS + 1):
        assert guess(client_at(app, f"192.0.2.{i}"), "ada@example.com").status_code == 401
    refused = guess(client_at(app, "192.0.2.200"), "ada@example.com", PASSWORD)
    assert refused.status_code == 429 and "this account" in text(refused)


def test_every_console_form_needs_its_csrf_token(app):
    client = signed_in(app, "ada@example.com")
    for path, data in [
        ("/console/keys", {"name": "x"}),
        ("/console/signout", {}),
        ("/console/admin/keys/1/revoke", {}),
        ("/console/signin", {"email": "ada@example.com", "password": PASSWORD}),
        ("/console/signup", {"email": "n@example.com", "password": PASSWORD, "confirm": PASSWORD}),
        (
            "/console/password",
            {"current_password": PASSWORD, "password": "a new password", "confirm": "a new password"},
        ),
    ]:
        for token in (None, "forged-token"):
            resp = client.post(path, data=data if token is None else {**data, "csrf_token": token})
            assert resp.status_code == 400, path
            assert resp.mimetype == "text/html" and "CSRF" in text(resp)
    with services(app).db.session_scope() as conn:
        assert list_keys(conn) == []
    assert client.get("/console/keys").status_code == 200  # still signed in


def test_api_keeps_bearer_auth_without_csrf_even_with_a_session_cookie(app):
    client = signed_in(app, "ada@example.com")
    account = make_account(app)
    resp = client.post("/api/v1/chat/completions", json=chat(), headers=account.headers)
    assert resp.status_code == 200 and resp.get_json()["object"] == "chat.completion"
    # The session cookie is no credential for the API.
    assert client.post("/api/v1/chat/completions", json=chat()).status_code == 401


def test_sign_out_ends_the_session(app):
    client = signed_in(app, "ada@example.com")
    resp = client.post("/console/signout", data={"csrf_token": csrf_token(client, "/console/keys")})
    assert resp.status_code == 302 and resp.location == "/console/signin"
    assert client.get("/console/keys").status_code == 302


def test_console_errors_are_pages_and_api_errors_stay_json(make_app):
    app = make_app()

    def boom() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/console/boom", "boom", boom)
    client = app.test_client()
    missing = client.get("/console/nothing-here")
    assert missing.status_code == 404 and missing.mimetype == "text/html" and "Not Found" in text(missing)
    assert missing.headers["X-Request-Id"] in text(missing)
    broken = client.get("/console/boom")
    assert broken.status_code == 500 and broken.mimetype == "text/html" and "a bug" not in text(broken)
    api = client.get("/api/v1/nothing")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"


def test_console_pages_carry_security_headers(client):
    resp = client.get("/console/signin")
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "Content-Security-Policy" not in client.get("/api/v1/models").headers


def test_secret_key_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "var" / "secret_key"
    key = load_secret_key("", testing=False, path=path)
    assert len(key) >= 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret_key("", testing=False, path=path) == key
    assert load_secret_key("from-the-environment-" * 3, testing=False, path=path).startswith("from-the")
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    path.write_text("short")
    with pytest.raises(ConfigError, match="shorter than 32"):
        load_secret_key("", testing=False, path=path)
    with pytest.raises(ConfigError, match="GATEWAY_SECRET_KEY must be at least 32"):
        load_secret_key("too-short", testing=False, path=path)


def test_sessions_survive_between_apps_sharing_a_secret_key(make_app):
    # Two workers (or hosts) with one GATEWAY_SECRET_KEY accept each other's sessions.
    secret = "a-shared-secret-for-two-workers-0123456789"
    first, second = make_app(secret_key=secret), make_app(secret_key=secret)
    client = signed_in(first, "ada@example.com")
    with second.test_client() as other:
        other.set_cookie("gateway_session", client.get_cookie("gateway_session").value)
        assert other.get("/console/keys").status_code == 200


def test_usd_shows_micro_usd_with_up_to_six_decimals():
    assert [usd(v) for v in (0, 1, 1_500_000, -250_000, 1_234_567_890, None)] == [
        "$0.00",
        "$0.000001",
        "$1.50",
        "-$0.25",
        "$1,234.56789",
        "—",
    ]

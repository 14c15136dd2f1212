"""Usage, quickstart and the admin pages of the console, and who may open them, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.store.tables import ledger_entries
from gateway.store.users import find_user, get_user
from tests.support.app import PRICED, chat, services
from tests.support.console import NEW_KEY, PASSWORD, add_user, csrf_token, post_form, signed_in, text

ADMIN_PAGES = ["/console/admin/", "/console/admin/users", "/console/admin/keys", "/console/admin/usage"]


@pytest.fixture
def app(make_app):
    return make_app(providers=PRICED)


def call(app, secret: str, request_id: str, content: str = "Hi there") -> None:
    resp = app.test_client().post(
        "/api/v1/chat/completions",
        json=chat("priced:echo", content),
        headers={"Authorization": f"Bearer {secret}", "X-Request-Id": request_id},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)


def user_id(app, email: str) -> int:
    with services(app).db.session_scope() as conn:
        return find_user(conn, email).id


def test_usage_page_shows_balance_sums_chart_and_latest_requests(app):
    client = signed_in(app, "ada@example.com", balance_micros=5_000_000)
    secret = NEW_KEY.search(text(post_form(client, "/console/keys", {"name": "laptop"}))).group(1)
    call(app, secret, "req-usage-page-0001")
    call(app, secret, "req-usage-page-0002", "one two three four")
    resp = client.get("/console/usage")
    page = text(resp)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert "req-usage-page-0001" in page and "req-usage-page-0002" in page
    assert "priced:echo" in page and '<svg viewBox="0 0 900 200"' in page and "<rect" in page
    with services(app).db.session_scope() as conn:
        balance = get_user(conn, user_id(app, "ada@example.com")).balance_micros
    assert balance < 5_000_000
    from gateway.console.formatting import usd

    assert usd(balance) in page


def test_usage_page_without_requests_says_so(app):
    page = text(signed_in(app, "ada@example.com").get("/console/usage"))
    assert "No requests in the last 30 days" in page and "No requests yet" in page and "$0.00" in page


def test_quickstart_shows_this_gateways_url_and_models(app):
    page = text(signed_in(app, "ada@example.com").get("/console/quickstart"))
    assert "http://localhost/api/v1" in page and "priced:echo" in page and "mock:echo" in page
    assert "from openai import OpenAI" in page and "await fetch(" in page and "curl " in page
    assert 'data-copy-target="snippet-python"' in page


@pytest.mark.parametrize("path", ["/console/keys", "/console/usage", "/console/quickstart", *ADMIN_PAGES])
def test_pages_send_visitors_to_sign_in(client, path):
    resp = client.get(path)
    assert resp.status_code == 302 and resp.location.startswith("/console/signin?next=/console/")


@pytest.mark.parametrize(
    "method, path",
    [("GET", p) for p in ADMIN_PAGES]
    + [("GET", "/console/admin/users/{id}/credit"), ("POST", "/console/admin/users/{id}/credit")]
    + [("POST", "/console/admin/users")],
)
def test_admin_pages_are_closed_to_non_admins(app, method, path):
    client = signed_in(app, "bo@example.com", balance_micros=1_000_000)
    path = path.format(id=user_id(app, "bo@example.com"))
    data = {"amount_usd": "100", "email": "new@example.com", "password": PASSWORD}
    if method == "POST":
        resp = client.post(path, data={**data, "csrf_token": csrf_token(client, "/console/keys")})
    else:
        resp = client.get(path)
    assert resp.status_code == 403 and resp.mimetype == "text/html" and "administrators only" in text(resp)
    with services(app).db.session_scope() as conn:
        assert get_user(conn, user_id(app, "bo@example.com")).balance_micros == 1_000_000
        assert find_user(conn, "new@example.com") is None
    assert "/console/admin/" not in text(client.get("/console/keys"))  # no Admin link either


def test_admin_sees_every_user_key_and_request(app):
    ada = signed_in(app, "ada@example.com", balance_micros=2_000_000)
    secret = NEW_KEY.search(text(post_form(ada, "/console/keys", {"name": "ada-laptop"}))).group(1)
    call(app, secret, "req-admin-sees-0001")
    admin = signed_in(app, "root@example.com", is_admin=True)
    assert 'href="/console/admin/users"' in text(admin.get("/console/keys"))
    assert admin.get("/console/admin/").location == "/console/admin/users"
    users = text(admin.get("/console/admin/users"))
    assert "ada@example.com" in users and "root@example.com" in users
    keys = text(admin.get("/console/admin/keys"))
    assert "ada-laptop" in keys and secret[:10] in keys and secret not in keys
    usage = text(admin.get("/console/admin/usage"))
    assert "req-admin-sees-0001" in usage and "ada@example.com" in usage


def test_admin_credits_and_debits_a_user_with_a_ledger_note(app):
    add_user(app, "ada@example.com", balance_micros=1_000_000)
    ada = user_id(app, "ada@example.com")
    admin = signed_in(app, "root@example.com", is_admin=True)
    page = f"/console/admin/users/{ada}/credit"
    assert "Credit ada@example.com" in text(admin.get(page))
    resp = post_form(admin, page, {"amount_usd": "2.5", "note": "invoice 42"})
    assert resp.status_code == 302 and resp.location == "/console/admin/users"
    assert "$2.50 credited to ada@example.com" in text(admin.get("/console/admin/users"))
    too_much = post_form(admin, page, {"amount_usd": "-10"})
    assert too_much.status_code == 400 and "larger than the user" in text(too_much)
    zero = post_form(admin, page, {"amount_usd": "0"})
    assert zero.status_code == 400 and "non-zero" in text(zero)
    with services(app).db.session_scope() as conn:
        assert get_user(conn, ada).balance_micros == 3_500_000
        notes = conn.execute(select(ledger_entries.c.note, ledger_entries.c.amount_micros)).all()
        assert [tuple(n) for n in notes] == [("invoice 42", 2_500_000)]
        assert conn.execute(select(func.count()).select_from(ledger_entries)).scalar_one() == 1
    assert admin.get("/console/admin/users/999999/credit").status_code == 404


def test_admin_adds_a_user_who_can_then_sign_in(make_app):
    app = make_app(signup="closed")
    admin = signed_in(app, "root@example.com", is_admin=True)
    resp = post_form(admin, "/console/admin/users", {"email": "new@example.com", "password": PASSWORD})
    assert resp.status_code == 302
    again = post_form(admin, "/console/admin/users", {"email": "NEW@example.com", "password": PASSWORD})
    assert again.status_code == 409
    newcomer = app.test_client()
    assert (
        post_form(newcomer, "/console/signin", {"email": "new@example.com", "password": PASSWORD}).status_code
        == 302
    )
    assert "/console/admin/" not in text(newcomer.get("/console/keys"))


def test_a_demoted_admin_loses_the_admin_pages_at_once(app):
    from sqlalchemy import update

    from gateway.store.tables import users

    admin = signed_in(app, "root@example.com", is_admin=True)
    assert admin.get("/console/admin/users").status_code == 200
    with services(app).db.session_scope() as conn:
        conn.execute(update(users).where(users.c.email == "root@example.com").values(is_admin=False))
    assert admin.get("/console/admin/users").status_code == 403

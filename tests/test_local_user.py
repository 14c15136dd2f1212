"""The built-in local user: unlimited for the quickstart, never an admin, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import update

from gateway.store.tables import users
from gateway.store.users import LOCAL_USER, get_user
from tests.support.app import PRICED, assert_envelope, chat, make_account, services


def test_local_users_key_is_refused_by_the_admin_api(make_app):
    app = make_app(providers=PRICED)
    local = make_account(app)
    with services(app).db.session_scope() as conn:
        user = get_user(conn, local.user_id)
    assert user.email == LOCAL_USER and user.unlimited and not user.is_admin
    client = app.test_client()
    resp = client.post(
        f"/api/admin/users/{local.user_id}/credit", json={"amount_usd": 1000000}, headers=local.headers
    )
    assert_envelope(resp, 403, "permission_denied")
    # Still unlimited: the quickstart's key calls a priced model with no balance.
    assert (
        client.post("/api/v1/chat/completions", json=chat("priced:echo"), headers=local.headers).status_code
        == 200
    )


def test_db_init_takes_admin_rights_from_an_older_local_user(make_app):
    app = make_app()
    local = make_account(app)
    with services(app).db.session_scope() as conn:  # as an earlier version made it
        conn.execute(update(users).where(users.c.id == local.user_id).values(is_admin=True))
    services(app).db.create_schema()  # what `gateway db init` runs
    with services(app).db.session_scope() as conn:
        user = get_user(conn, local.user_id)
    assert user.unlimited and not user.is_admin

"""Calling the admin API in tests: make users and keys through it, and call a model with a key."""

from __future__ import annotations

from tests.support.app import chat

TOKEN = "admin-token-for-tests-0123456789"
TOKEN_HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def create_user(admin, email: str = "ada@example.com", **fields) -> dict:
    resp = admin("POST", "/users", {"email": email, **fields})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def create_key(admin, user_id: int, **fields) -> dict:
    resp = admin("POST", "/keys", {"user_id": user_id, **fields})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.get_json()


def call_chat(app, secret: str, model: str = "mock:echo", **extra):
    return app.test_client().post(
        "/api/v1/chat/completions",
        json=chat(model=model, **extra),
        headers={"Authorization": f"Bearer {secret}"},
    )

"""Unpriced models: free only for users with a positive balance or unlimited, or marked `free = true`."""

from __future__ import annotations

import pytest
import responses
from sqlalchemy import select

from gateway.config.settings import load_settings
from gateway.errors import ConfigError
from gateway.store.tables import holds, usage_records, users
from tests.support.app import assert_envelope, chat, make_account, services

UP_URL = "http://upstream.test/v1/chat/completions"
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
PROVIDERS = {
    "up": {
        "type": "openai",
        "base_url": "http://upstream.test/v1",
        "api_key": "sk-up",
        "models": {"unpriced": {}, "gift": {"free": True}},
    }
}


@pytest.fixture
def app(make_app):
    return make_app(providers=PROVIDERS)


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(UP_URL, json=ANSWER)
        yield mock


def post(app, account, model: str):
    return app.test_client().post("/api/v1/chat/completions", json=chat(model), headers=account.headers)


def test_a_stranger_without_balance_may_not_use_an_unpriced_model(app, upstream):
    stranger = make_account(app, email="stranger@example.com")
    assert_envelope(post(app, stranger, "up:unpriced"), 429, "insufficient_quota")
    assert len(upstream.calls) == 0


@pytest.mark.parametrize("options", [{"balance_micros": 1}, {"unlimited": True}])
def test_a_user_with_balance_or_unlimited_uses_it_at_no_cost(app, upstream, options):
    account = make_account(app, email="ada@example.com", **options)
    assert post(app, account, "up:unpriced").status_code == 200
    with services(app).db.session_scope() as conn:
        assert conn.execute(select(usage_records.c.cost_micros)).scalar_one() == 0
        assert conn.execute(select(holds)).all() == []
        user = conn.execute(select(users).where(users.c.id == account.user_id)).one()
    assert (user.balance_micros, user.held_micros) == (options.get("balance_micros", 0), 0)


def test_a_model_marked_free_is_free_for_everyone(app, upstream):
    stranger = make_account(app, email="stranger@example.com")
    assert post(app, stranger, "up:gift").status_code == 200
    assert len(upstream.calls) == 1


def test_free_must_be_a_boolean(make_app):
    bad = {"up": {**PROVIDERS["up"], "models": {"m": {"free": "yes"}}}}
    with pytest.raises(ConfigError, match="providers.up.models.m.free must be true or false"):
        load_settings({"providers": bad})

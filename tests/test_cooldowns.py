"""Shared cooldowns: the store's board, and two apps (two workers) on one database sharing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import responses

from gateway.routing.failover import Failover
from gateway.store import cooldowns
from gateway.store.cooldowns import SharedCooldowns
from tests.support.app import chat, make_account, services

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
A_URL = "http://a.test/v1/chat/completions"
B_URL = "http://b.test/v1/chat/completions"
PAIR = {
    "pair": {
        "type": "openai",
        "cooldown": 30,
        "channels": [
            {"name": "a", "base_url": "http://a.test/v1", "api_key": "sk-a"},
            {"name": "b", "base_url": "http://b.test/v1", "api_key": "sk-b"},
        ],
        "models": {"m": {}},
    }
}
ANSWER = {
    "id": "x",
    "object": "chat.completion",
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def test_a_posted_cooldown_is_read_until_it_ends(app):
    db = services(app).db
    cooldowns.post(db, "p/a", T0 + timedelta(seconds=30))
    assert cooldowns.read(db, T0) == {"p/a": T0 + timedelta(seconds=30)}
    assert cooldowns.read(db, T0 + timedelta(seconds=30)) == {}


def test_a_shorter_cooldown_never_shortens_a_longer_one(app):
    db = services(app).db
    cooldowns.post(db, "p/a", T0 + timedelta(seconds=600))
    cooldowns.post(db, "p/a", T0 + timedelta(seconds=30))
    assert cooldowns.read(db, T0) == {"p/a": T0 + timedelta(seconds=600)}
    cooldowns.post(db, "p/a", T0 + timedelta(seconds=900))
    assert cooldowns.read(db, T0) == {"p/a": T0 + timedelta(seconds=900)}


@pytest.fixture
def upstream():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def test_one_workers_failure_benches_the_channel_for_another_worker(make_app, upstream):
    first, second = make_app(providers=PAIR), make_app(providers=PAIR)  # two workers, one database
    for app in (first, second):
        relay = services(app).relay  # a constant draw leaves equal weights in order: a is always first
        relay.failover = Failover(rng=lambda: 0.5, board=SharedCooldowns(relay.db, relay.clock))
    account = make_account(first)
    a = upstream.add(responses.POST, A_URL, status=503, json={"error": {"message": "down"}})
    b = upstream.add(responses.POST, B_URL, json=ANSWER)

    def send(app) -> str:
        resp = app.test_client().post(
            "/api/v1/chat/completions", json=chat("pair:m"), headers=account.headers
        )
        assert resp.status_code == 200, resp.get_data(as_text=True)
        return resp.headers["X-Gateway-Attempts"]

    assert send(first) == "2"
    assert send(second) == "1", "the second worker reads the first's failure from the store"
    assert (a.call_count, b.call_count) == (1, 2)

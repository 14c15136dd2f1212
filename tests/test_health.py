"""Liveness and readiness: no key needed, tiny answers, readiness follows the database."""

from __future__ import annotations

from gateway import create_app


def test_healthz_needs_no_key(client):
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok"}
    assert resp.headers["X-Request-Id"]


def test_readyz_reports_the_catalog_when_the_database_answers(client):
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ready", "models": 1}


def test_readyz_is_503_in_the_envelope_when_the_database_is_unreachable(tmp_path):
    # PostgreSQL on a port nothing listens on: the store is down, the process is not ready.
    app = create_app({"database_url": "postgresql://nobody@127.0.0.1:9/none", "testing": True})
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["error"]["code"] == "not_ready" and body["request_id"] == resp.headers["X-Request-Id"]
    assert "127.0.0.1" not in body["error"]["message"]


def test_an_exhausted_pool_is_503_not_500(db_url):
    import pytest

    from gateway.errors import ServiceUnavailableError
    from gateway.store.database import Database

    db = Database(db_url, pool_size=1, pool_timeout=0.1)
    busy = [db.engine.connect(), db.engine.connect()]  # pool_size plus its equal overflow
    try:
        with pytest.raises(ServiceUnavailableError) as info:
            with db.session_scope():
                pass
        assert info.value.status == 503
    finally:
        for conn in busy:
            conn.close()
        db.dispose()


def test_a_request_fails_closed_with_503_when_the_database_goes_away(make_app):
    # The key is already cached, so only billing (and rate limits) need the store: they fail closed.
    import responses

    from gateway.config.settings import normalise_database_url
    from gateway.store.database import make_engine
    from tests.support.app import chat, make_account, services

    providers = {"up": {"base_url": "http://upstream.test/v1", "models": {"m": {"input_price": 1}}}}
    app = make_app(providers=providers, key_cache_ttl=60)
    key = make_account(app)
    client = app.test_client()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as upstream:
        upstream.post("http://upstream.test/v1/chat/completions", json={"choices": [], "usage": {}})
        first = client.post("/api/v1/chat/completions", json=chat("up:m"), headers=key.headers)
        assert first.status_code == 200
        services(app).db.engine.dispose()
        services(app).db.engine = make_engine(normalise_database_url("postgresql://nobody@127.0.0.1:9/none"))
        resp = client.post("/api/v1/chat/completions", json=chat("up:m"), headers=key.headers)
        assert resp.status_code == 503
        assert resp.get_json()["error"]["code"] == "service_unavailable"
        assert "127.0.0.1" not in resp.get_data(as_text=True)
        assert len(upstream.calls) == 1, "no upstream call without a reservation"

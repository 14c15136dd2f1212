"""Metrics, the overhead header and the log line: what operators see of every request."""

from __future__ import annotations

import json

from tests.support.app import chat, make_account
from tests.support.metrics import sample


def test_settled_requests_are_counted_with_tokens_cost_and_overhead(client, account):
    for stream in (False, True):
        client.post(
            "/api/v1/chat/completions", json=chat(content="a b c", stream=stream), headers=account.headers
        ).get_data()
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "gateway_requests_total", model="mock:echo", status="200", outcome="ok") == 2
    assert sample(text, "gateway_tokens_total", model="mock:echo", kind="completion") == 6
    assert sample(text, "gateway_overhead_seconds_count") == 2
    assert sample(text, "gateway_time_to_first_token_seconds_count", model="mock:echo") == 1
    assert sample(text, "gateway_active_streams") == 0
    assert sample(text, "gateway_holds_outstanding") == 0


def test_failed_tries_are_counted_by_channel_and_the_request_under_the_model_that_answered(make_app):
    import responses

    providers = {
        "up": {
            "base_url": "http://upstream.test/v1",
            "models": {"m": {"fallbacks": ["mock:echo"]}},
            "channels": [{"name": "primary"}],
        }
    }
    app = make_app(providers=providers)
    client, key = app.test_client(), make_account(app)
    with responses.RequestsMock() as upstream:
        upstream.post(
            "http://upstream.test/v1/chat/completions", status=503, json={"error": {"message": "busy"}}
        )
        resp = client.post("/api/v1/chat/completions", json=chat("up:m"), headers=key.headers)
    assert resp.status_code == 200 and resp.headers["X-Gateway-Attempts"] == "2"
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "gateway_upstream_failures_total", channel="up/primary", reason="http_503") == 1
    assert sample(text, "gateway_requests_total", model="mock:echo", status="200", outcome="ok") == 1
    assert sample(text, "gateway_requests_total", model="up:m", status="200", outcome="ok") == 0


def test_holds_in_flight_are_shown(app, client, account):
    from datetime import UTC, datetime

    from gateway.store import billing
    from tests.support.app import services

    hold = billing.Hold("in-flight-1", account.user_id, account.key_id, "mock:echo", 1234)
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold, datetime.now(UTC))
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "gateway_holds_outstanding") == 1
    assert sample(text, "gateway_holds_outstanding_micros") == 1234


def test_metrics_are_closed_to_other_networks(client):
    resp = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "permission_denied"


def test_metrics_token_replaces_the_network_rule(make_app):
    app = make_app(metrics_token="scrape-secret-123")
    client = app.test_client()
    assert client.get("/metrics").status_code == 403  # loopback alone is not enough now
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-123"},
                    environ_base={"REMOTE_ADDR": "10.1.2.3"})  # fmt: skip
    assert ok.status_code == 200 and ok.content_type.startswith("text/plain")


def test_overhead_header_and_log_fields(client, account, caplog):
    caplog.set_level("INFO", logger="gateway.access")
    resp = client.post("/api/v1/chat/completions", json=chat(), headers=account.headers)
    overhead = float(resp.headers["X-Gateway-Overhead-Ms"])
    assert 0 <= overhead < 10_000
    line = json.loads([r.getMessage() for r in caplog.records if r.name == "gateway.access"][0])
    assert line["overhead_ms"] >= 0 and line["upstream_ms"] >= 0
    streamed = client.post("/api/v1/chat/completions", json=chat(stream=True), headers=account.headers)
    assert float(streamed.headers["X-Gateway-Overhead-Ms"]) >= 0
    streamed.close()  # as a WSGI server would: the stream settles, and no hold outlives the test


def test_gateway_log_line_fields_contain_no_secret(make_app, caplog):
    app = make_app()
    acct = make_account(app)
    caplog.set_level("INFO", logger="gateway.access")
    app.test_client().post(
        "/api/v1/chat/completions", json=chat(content="private words"), headers=acct.headers
    )
    text = " ".join(r.getMessage() for r in caplog.records)
    assert acct.secret not in text and "private words" not in text

"""The floor (bench/floor.py), make bench's reference: a key check, whole and streamed relays."""

from __future__ import annotations

import importlib
import json

from tests.fakes.upstream import FakeUpstream

BODY = {"model": "m", "messages": [{"role": "user", "content": "one two three"}]}


def _floor(monkeypatch, url: str):
    monkeypatch.setenv("BENCH_UPSTREAM", url)
    monkeypatch.setenv("BENCH_KEY", "sk-floor-test")
    import bench.floor

    return importlib.reload(bench.floor).app.test_client()


def test_floor_refuses_an_unknown_key_and_relays_whole_and_streamed_answers(monkeypatch):
    with FakeUpstream() as up:
        client = _floor(monkeypatch, up.url)
        assert client.post("/api/v1/chat/completions", json=BODY).status_code == 401
        auth = {"Authorization": "Bearer sk-floor-test"}
        whole = client.post("/api/v1/chat/completions", json=BODY, headers=auth)
        assert whole.status_code == 200
        assert json.loads(whole.data)["choices"][0]["message"]["content"]
        streamed = client.post("/api/v1/chat/completions", json=dict(BODY, stream=True), headers=auth)
        events = [e for e in streamed.data.split(b"\n\n") if e]
        assert events[-1] == b"data: [DONE]"
        assert all(e.startswith(b"data: ") for e in events)

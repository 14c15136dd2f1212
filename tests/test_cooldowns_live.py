"""Two gunicorn gateways (two workers each) on one PostgreSQL: one failure benches a channel for all.

Channel "dead" always answers 503 and weighs a hundred times "live", so every worker would try it
first; once one worker has failed on it, the others read the cooldown from the store within a second.
"""

from __future__ import annotations

import time

import requests

from tests.fakes.gateway_server import run_gateway, store_url
from tests.fakes.loopback import Exchange, Handler, LoopbackServer
from tests.fakes.upstream import SECRET, FakeUpstream


class DeadUpstream(LoopbackServer):
    prefix = "/v1"

    def handle(self, handler: Handler, ex: Exchange) -> None:
        handler.send_json(503, {"error": {"message": "down", "type": "server_error"}})


def pair_toml(dead: str, live: str) -> str:
    return f"""
[providers.pair]
type = "openai"
api_key = "{SECRET}"
cooldown = 60
[[providers.pair.channels]]
name = "dead"
base_url = "{dead}"
weight = 100
[[providers.pair.channels]]
name = "live"
base_url = "{live}"
weight = 1
[providers.pair.models.chat]
"""


def send(base: str, key: str) -> str:
    body = {"model": "pair:chat", "messages": [{"role": "user", "content": "hi"}]}
    resp = requests.post(
        base + "/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    return resp.headers["X-Gateway-Attempts"]


def test_one_failure_benches_a_channel_for_every_worker_of_two_gateways(tmp_path):
    with DeadUpstream() as dead, FakeUpstream() as live, store_url("postgresql", tmp_path) as db_url:
        extra = pair_toml(dead.url, live.url)
        with run_gateway(tmp_path, db_url, live.url, workers=2, threads=8, extra_toml=extra) as gw_a:
            with run_gateway(
                tmp_path, db_url, live.url, workers=2, threads=8, extra_toml=extra, init_db=False
            ) as gw_b:
                for _ in range(10):  # dead is first 100 times in 101: one request almost always hits it
                    send(gw_a.api_base, gw_a.key)
                    if dead.exchanges:
                        break
                assert len(dead.exchanges) == 1
                time.sleep(1.0)  # every worker reads the shared board at most every 0.5 s
                # Fresh connections each time, so gunicorn spreads them over both workers of each gateway.
                tries = [send(gw.api_base, gw.key) for _ in range(10) for gw in (gw_a, gw_b)]
    assert len(dead.exchanges) == 1, "no other worker tried the benched channel"
    assert tries == ["1"] * 20

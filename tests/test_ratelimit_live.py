"""Two gateway processes on one PostgreSQL share one rate limit, rather than one limit each.

Each limit is set with the CLI, as an operator would; the requests are split evenly across both
gateways (two workers each) and sent at once.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import create_engine, func, select

from gateway.store.tables import holds, usage_records
from tests.fakes.gateway_server import run_gateway, store_url
from tests.fakes.upstream import FakeUpstream

EMAIL = "limits@example.com"


def send(url: str, key: str, body: dict) -> int:
    resp = requests.post(url, data=json.dumps(body), headers={"Authorization": f"Bearer {key}"}, timeout=60)
    if resp.status_code == 429:
        assert resp.json()["error"]["code"] == "rate_limit_exceeded"
    return resp.status_code


def burst(urls: list[str], key: str, body: dict) -> list[int]:
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        return list(pool.map(lambda u: send(u, key, body), urls))


def test_two_gateways_share_one_rpm_and_one_concurrency_limit(tmp_path):
    with FakeUpstream() as fake, store_url("postgresql", tmp_path) as db_url:
        with run_gateway(tmp_path, db_url, fake.url, workers=2, threads=16) as gw_a:
            with run_gateway(tmp_path, db_url, fake.url, workers=2, threads=16, init_db=False) as gw_b:
                gw_a.cli("users", "create", EMAIL, "--unlimited")
                rpm_key = gw_a.create_key("--user", EMAIL, "--rpm", "10")
                conc_key = gw_b.create_key("--user", EMAIL, "--name", "streams")
                key_id = gw_b.cli("keys", "list", "--user", EMAIL, "--json").stdout
                conc_id = next(k["id"] for k in json.loads(key_id) if k["name"] == "streams")
                gw_b.cli("keys", "limits", str(conc_id), "--concurrency", "3")
                urls = [gw_a.api_base + "/chat/completions", gw_b.api_base + "/chat/completions"] * 15

                # The 30 requests must fall in one minute window: skip the last seconds of a minute.
                wait = 60 - time.time() % 60
                if wait < 15:
                    time.sleep(wait + 0.5)
                hello = {"model": "fake:chat", "messages": [{"role": "user", "content": "hi"}]}
                rpm = burst(urls, rpm_key, hello)
                # Each stream lasts ~2 s (40 chunks 50 ms apart), so all 30 overlap the first three.
                slow = {
                    "model": "fake:slow",
                    "stream": True,
                    "max_tokens": 40,
                    "messages": [{"role": "user", "content": "go"}],
                }
                concurrent = burst(urls, conc_key, slow)
                engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg2://", 1))
                with engine.connect() as conn:
                    rows = conn.execute(select(func.count()).select_from(usage_records)).scalar_one()
                    left = conn.execute(select(func.count()).select_from(holds)).scalar_one()
                engine.dispose()
    assert sorted(set(rpm)) == [200, 429] and rpm.count(200) == 10, rpm
    assert sorted(set(concurrent)) == [200, 429] and concurrent.count(200) == 3, concurrent
    assert rows == 13, "a refused request writes no usage row"
    assert left == 0

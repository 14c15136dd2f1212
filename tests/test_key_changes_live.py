"""Two gunicorn workers, one key cache each (a minute's TTL): a revoke, a disable or a new rate limit
made elsewhere (the CLI, the other worker) is honoured by both within a second, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.fakes.gateway_server import run_gateway, store_url
from tests.fakes.upstream import FakeUpstream

TOKEN = "admin-token-for-live-tests-0123456789"
HELLO = {"model": "fake:chat", "messages": [{"role": "user", "content": "hi"}]}
ROUNDS = 16  # fresh connections per check: both workers accept some of them


def statuses(url: str, key: str) -> list[int]:
    def one(_: int) -> int:
        headers = {"Authorization": f"Bearer {key}", "Connection": "close"}
        return requests.post(url, data=json.dumps(HELLO), headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(ROUNDS)))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_changes_reach_both_workers_within_a_second(tmp_path, kind):
    env = {"GATEWAY_KEY_CACHE_TTL": "60", "GATEWAY_ADMIN_TOKEN": TOKEN}
    with FakeUpstream() as fake, store_url(kind, tmp_path) as db_url:
        with run_gateway(tmp_path, db_url, fake.url, workers=2, threads=4, env=env) as gw:
            url = gw.api_base + "/chat/completions"
            names = ("revoked", "disabled", "limited")
            secrets = {name: gw.create_key("--name", name) for name in names}
            listed = json.loads(gw.cli("keys", "list", "--json").stdout)
            ids = {k["name"]: k["id"] for k in listed}
            for name in names:  # every worker now caches every key for a minute
                assert statuses(url, secrets[name]) == [200] * ROUNDS

            gw.cli("keys", "revoke", str(ids["revoked"]))  # another process: no worker is told
            resp = requests.patch(  # one worker serves this; the other is not told either
                f"{gw.base_url}/api/admin/keys/{ids['disabled']}",
                json={"disabled": True},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=30,
            )
            assert resp.status_code == 200, resp.text
            gw.cli("keys", "limits", str(ids["limited"]), "--rpm", "1")
            time.sleep(1.0)

            assert statuses(url, secrets["revoked"]) == [401] * ROUNDS
            assert statuses(url, secrets["disabled"]) == [401] * ROUNDS
            limited = statuses(url, secrets["limited"])
            assert limited.count(200) <= 1 and limited.count(429) >= ROUNDS - 1, limited

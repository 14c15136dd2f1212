"""Reload (SIGHUP, as systemctl reload sends): a changed config brings its models, a broken one is
refused while the old one keeps serving, and a stream in flight finishes on the old worker."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import requests

from tests.fakes.gateway_server import run_gateway, store_url, write_config
from tests.fakes.upstream import FakeUpstream

EXTRA = """
[providers.extra]
type = "mock"
[providers.extra.models.echo]
"""


def models(gw) -> set[str]:
    resp = requests.get(gw.api_base + "/models", headers=gw.headers, timeout=10)
    assert resp.status_code == 200, resp.text
    return {m["id"] for m in resp.json()["data"]}


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def stream(gw, out: list[str]) -> None:
    body = {
        "model": "fake:slow",
        "stream": True,
        "max_tokens": 80,
        "messages": [{"role": "user", "content": "go"}],
    }
    with requests.post(
        gw.api_base + "/chat/completions", json=body, headers=gw.headers, stream=True, timeout=60
    ) as resp:
        out.append(str(resp.status_code))
        out.extend(line.decode() for line in resp.iter_lines() if line)


def test_sighup_reloads_a_good_config_refuses_a_broken_one_and_lets_streams_finish(tmp_path):
    with FakeUpstream() as fake, store_url("sqlite", tmp_path) as db_url:
        with run_gateway(tmp_path, db_url, fake.url, workers=1, threads=8) as gw:
            config = gw.env["GATEWAY_CONFIG"]
            assert "extra:echo" not in models(gw)
            lines: list[str] = []
            streaming = threading.Thread(target=stream, args=(gw, lines))
            streaming.start()  # 80 chunks 50 ms apart: ~4 s, across the reload
            assert wait_for(lambda: len(lines) > 3, 10)

            write_config(tmp_path / os.path.basename(config), fake.url, EXTRA)
            os.kill(gw.process.pid, signal.SIGHUP)
            assert wait_for(lambda: "extra:echo" in models(gw), 30), gw.log_text()[-3000:]
            streaming.join(30)
            assert lines[0] == "200" and lines[-1] == "data: [DONE]", lines[-3:]
            chunks = [json.loads(x[6:]) for x in lines[1:-1]]
            assert sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")) == 80

            with open(config, "a") as f:
                f.write("[providers.broken\n")  # not TOML
            os.kill(gw.process.pid, signal.SIGHUP)
            assert wait_for(lambda: "reload refused" in gw.log_text(), 30), gw.log_text()[-3000:]
            time.sleep(1)
            assert gw.process.poll() is None, "the server is still up"
            assert "extra:echo" in models(gw), "the running configuration stays"
            body = {"model": "extra:echo", "messages": [{"role": "user", "content": "still here"}]}
            resp = requests.post(gw.api_base + "/chat/completions", json=body, headers=gw.headers, timeout=30)
            assert resp.status_code == 200, resp.text

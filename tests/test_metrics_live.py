"""Metrics under gunicorn: every worker's scrape reports the requests all workers served."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

from tests.fakes.gateway_server import run_gateway, store_url
from tests.fakes.upstream import FakeUpstream
from tests.support.metrics import sample


def test_workers_share_one_view_under_gunicorn(tmp_path):
    """8 concurrent streams on 2 workers of 4 threads: both must serve; a scrape of either sees all 8."""
    body = {
        "model": "fake:slow",
        "stream": True,
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}],
    }
    with FakeUpstream() as fake, store_url("sqlite", tmp_path) as url:
        with run_gateway(tmp_path, url, fake.url, workers=2, threads=4) as gw:

            def stream(_: int) -> int:
                with requests.post(
                    gw.api_base + "/chat/completions", json=body, headers=gw.headers, timeout=30
                ) as r:
                    return r.status_code

            with ThreadPoolExecutor(max_workers=8) as pool:
                assert list(pool.map(stream, range(8))) == [200] * 8
            texts = [
                requests.get(gw.base_url + "/metrics", headers={"Connection": "close"}, timeout=10).text
                for _ in range(6)
            ]
    for text in texts:  # whichever worker answered, it reports all 8
        assert sample(text, "gateway_requests_total", model="fake:slow", status="200", outcome="ok") == 8
        assert sample(text, "gateway_cost_micros_total", model="fake:slow") > 0
        assert sample(text, "gateway_active_streams") == 0

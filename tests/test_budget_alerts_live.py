"""A gunicorn gateway with two workers sends one 'threshold' and one 'exhausted' alert, not one each.

The upstream reports the usage the test asks for. Billing charges at most a request's hold, so a
budget is used up exactly only when the last request is charged its whole hold and that hold is
what was left: the first request learns the hold of a small request (charged in full), the second
brings the spend to the budget less that hold (past 80 %), the third, the same small request, fills it.
"""

from __future__ import annotations

import http.client
import json
import time

import pytest
import requests

from tests.fakes.gateway_server import run_gateway, store_url
from tests.fakes.loopback import Exchange, Handler, LoopbackServer
from tests.fakes.upstream import SECRET

BUDGET_MICROS = 10_000  # $0.01 a day


class BilledUpstream(LoopbackServer):
    """Answers every chat completion with completion_tokens = half the cost the message names.

    "cost full" reports far more than any hold, so the gateway charges the whole hold.
    """

    prefix = "/v1"

    def handle(self, handler: Handler, ex: Exchange) -> None:
        named = ex.body["messages"][-1]["content"].removeprefix("cost ")
        cost = 10**9 if named == "full" else int(named)
        usage = {"prompt_tokens": 0, "completion_tokens": cost // 2, "total_tokens": cost // 2}
        handler.send_json(
            200,
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": ex.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
                ],
                "usage": usage,
            },
        )


class Webhook(LoopbackServer):
    """A slow receiver: a worker that sent an alert is still waiting when the others look at it."""

    def handle(self, handler: Handler, ex: Exchange) -> None:
        time.sleep(0.5)
        handler.send_json(200, {"ok": True})

    def kinds(self) -> list[str]:
        return [ex.body["kind"] for ex in self.exchanges]

    def wait_for(self, kind: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while kind not in self.kinds():
            assert time.monotonic() < deadline, f"no {kind!r} alert within {timeout} s: {self.kinds()}"
            time.sleep(0.05)


def config(upstream: str, webhook: str) -> str:
    return f"""
[providers.bill]
type = "openai"
base_url = "{upstream}"
api_key = "{SECRET}"
[providers.bill.models.chat]
input_price = 1.0
output_price = 2.0

[alerts]
webhook_url = "{webhook}/hook"
threshold = 0.8
interval = 0.2
"""


def spend(base: str, key: str, cost: int | str, max_tokens: int = 400) -> int:
    body = {
        "model": "bill:chat",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": f"cost {cost}"}],
    }
    resp = requests.post(
        base + "/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    return resp.status_code


def spent(gw) -> int:
    """The key's spend this period, as `gateway keys list --json` shows it."""
    listed = json.loads(gw.cli("keys", "list", "--json").stdout)
    return next(k["period_spent_micros"] for k in listed if k["name"] == "nightly")


def touch_every_worker(port: int) -> None:
    # Each worker starts its sender on its first request; fresh connections spread over both.
    for _ in range(20):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        conn.close()


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_two_workers_send_one_threshold_and_one_exhausted_alert(tmp_path, store):
    with BilledUpstream() as upstream, Webhook() as webhook, store_url(store, tmp_path) as db_url:
        with run_gateway(tmp_path, db_url, workers=2, extra_toml=config(upstream.url, webhook.url)) as gw:
            key = gw.create_key("--name", "nightly", "--budget", "0.01", "--period", "day")
            touch_every_worker(gw.port)
            assert spend(gw.api_base, key, "full") == 200
            small_hold = spent(gw)
            assert 0 < small_hold < BUDGET_MICROS // 8  # about 800 micro-USD: under 80 % by far
            time.sleep(1.0)  # five ticks of each sender
            assert webhook.exchanges == []
            # Held about 8,700 (4,300 tokens at 2 micro-USD, and the prompt's bound): room for the cost.
            big = BUDGET_MICROS - 2 * small_hold
            assert spend(gw.api_base, key, big, max_tokens=4_300) == 200
            assert spent(gw) == BUDGET_MICROS - small_hold  # about 92 %
            webhook.wait_for("threshold")
            assert spend(gw.api_base, key, "full") == 200
            assert spent(gw) == BUDGET_MICROS
            webhook.wait_for("exhausted")
            assert spend(gw.api_base, key, "full") == 429  # the budget is used up
            time.sleep(1.5)  # time for a second sender to post a duplicate, if it would
            log = gw.log_text()
    assert sorted(webhook.kinds()) == ["exhausted", "threshold"], log[-3000:]
    first = webhook.exchanges[0].body
    assert first["subject_kind"] == "key" and first["name"] == "nightly" and key.startswith(first["prefix"])
    assert (first["budget_micros"], first["period"]) == (BUDGET_MICROS, "day")
    assert first["spent_micros"] == BUDGET_MICROS - small_hold
    started = {line.rsplit(" ", 1)[-1] for line in log.splitlines() if "budget alert sender started" in line}
    assert len(started) == 2, "both workers ran a sender"
    assert "text" in first and key not in webhook.exchanges[0].raw.decode()

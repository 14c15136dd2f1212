"""Two gunicorn gateways on one PostgreSQL never pass a team's balance or its periodic budget together.

Two members of one team send 50 concurrent streamed requests each, through the two gateways, with
their own team keys. The team's balance and its budget each cover exactly N worst cases (one of them
is the binding one per case); the members have no money of their own. The slow fake upstream keeps
every request in flight while the others reserve, so no settlement frees money early.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, func, select

from gateway.store.tables import holds, teams, usage_records, users
from tests.fakes.gateway_server import run_gateway, store_url
from tests.fakes.upstream import FakeUpstream

PER_GATEWAY = 50
AFFORDABLE = 20  # N
MAX_TOKENS = 40  # the slow fake model streams one chunk per token, 50 ms apart: 2 s a request
MEMBERS = ("ann@example.com", "bob@example.com")
TEAM = "research"


def worst_case_micros(body: bytes) -> int:
    # The fake provider: 1 µ$ a prompt token, 2 µ$ a completion token; a body byte is one prompt token
    # in the hold, plus the chat framing (16 tokens, and 4 per message).
    return len(body) + 16 + 4 + MAX_TOKENS * 2


def send(url: str, key: str, body: bytes) -> tuple[int, bytes, dict]:
    resp = requests.post(
        url,
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=60,
    )
    return resp.status_code, resp.content, dict(resp.headers)


@pytest.mark.parametrize("binding", ["balance", "budget"])
def test_two_gateways_never_pass_a_team_balance_or_budget(tmp_path, binding):
    body = json.dumps(
        {
            "model": "fake:slow",
            "stream": True,
            "max_tokens": MAX_TOKENS,
            "messages": [{"role": "user", "content": "go"}],
        }
    ).encode()
    exact = AFFORDABLE * worst_case_micros(body)
    balance = exact if binding == "balance" else 100 * exact
    budget = exact if binding == "budget" else 100 * exact
    with FakeUpstream() as fake, store_url("postgresql", tmp_path) as db_url:
        with run_gateway(tmp_path, db_url, fake.url, workers=2, threads=32) as gw_a:
            with run_gateway(tmp_path, db_url, fake.url, workers=2, threads=32, init_db=False) as gw_b:
                gw_a.cli("teams", "create", TEAM)
                for email in MEMBERS:
                    gw_a.cli("users", "create", email)
                    gw_a.cli("teams", "add", TEAM, email)
                gw_a.cli("teams", "credit", TEAM, f"{balance / 1_000_000:.6f}")
                gw_a.cli(
                    "teams", "budget", TEAM, "--budget", f"{budget / 1_000_000:.6f}", "--period", "month"
                )
                keys = [gw_a.create_key("--team", TEAM, "--user", email) for email in MEMBERS]
                engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg2://", 1))
                lowest, highest, stop = [balance], [0], threading.Event()

                def watch() -> None:  # neither may be passed, not even for a moment
                    while not stop.is_set():
                        with engine.connect() as conn:
                            row = conn.execute(select(teams).where(teams.c.name == TEAM)).one()
                        lowest[0] = min(lowest[0], row.balance_micros - row.held_micros)
                        highest[0] = max(highest[0], row.period_spent_micros + row.period_held_micros)
                        time.sleep(0.02)

                watcher = threading.Thread(target=watch, daemon=True)
                watcher.start()
                jobs = [
                    (gw.api_base + "/chat/completions", keys[i % 2])
                    for gw in (gw_a, gw_b)
                    for i in range(PER_GATEWAY)
                ]
                try:
                    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
                        results = list(pool.map(lambda job: send(job[0], job[1], body), jobs))
                finally:
                    stop.set()
                    watcher.join(timeout=5)

                statuses = [status for status, _, _ in results]
                assert set(statuses) <= {200, 429}, [c[:300] for s, c, _ in results if s not in (200, 429)]
                accepted = statuses.count(200)
                assert 0 < accepted <= AFFORDABLE
                refusals = [json.loads(c)["error"] for s, c, _ in results if s == 429]
                expected = "insufficient_quota" if binding == "balance" else "budget_exceeded"
                assert {e["code"] for e in refusals} == {expected}
                if binding == "budget":
                    assert all(
                        h.get("x-should-retry") == "false" and int(h["retry-after"]) > 0
                        for s, _, h in results
                        if s == 429
                    )
                with engine.connect() as conn:
                    team = conn.execute(select(teams).where(teams.c.name == TEAM)).one()
                    members = conn.execute(select(users).where(users.c.email.in_(MEMBERS))).all()
                    rows = conn.execute(select(func.count(), func.sum(usage_records.c.cost_micros))).one()
                    per_user = conn.execute(
                        select(usage_records.c.user_id, func.count()).group_by(usage_records.c.user_id)
                    ).all()
                    left = conn.execute(select(func.count()).select_from(holds)).scalar_one()
                engine.dispose()
    assert lowest[0] >= 0 and team.balance_micros >= 0
    assert highest[0] <= budget and team.period_spent_micros <= budget
    assert rows[0] == accepted and balance - team.balance_micros == rows[1] == team.period_spent_micros
    assert team.held_micros == 0 and team.period_held_micros == 0 and left == 0
    assert all(m.balance_micros == 0 and m.held_micros == 0 for m in members), "a member paid for a team key"
    assert len(per_user) == 2, "both members' keys were served"

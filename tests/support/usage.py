"""Usage written straight through billing (reserve, then settle at a given moment) and read back."""

from __future__ import annotations

from datetime import datetime

from gateway.store import billing, usage
from gateway.store.billing import Hold, UsageRecord
from tests.support.app import services


def settle_at(
    app,
    account,
    moment: datetime,
    rid: str,
    model: str = "mock:echo",
    cost: int = 10,
    team_id: int | None = None,
) -> None:
    """Reserve and settle one request of the account at moment, in one transaction."""
    hold = Hold(rid, account.user_id, account.key_id, model, 100, team_id=team_id)
    record = UsageRecord(
        status=200, outcome="ok", stream=False, prompt_tokens=3, completion_tokens=5, cost_micros=cost
    )
    with services(app).db.session_scope() as conn:
        billing.reserve(conn, hold, moment)
        assert billing.settle(conn, hold, record, moment)


def sums(app, group_by: str, **filters) -> list[dict]:
    with services(app).db.session_scope() as conn:
        return [s.to_json() for s in usage.summarize(conn, group_by, **filters)]

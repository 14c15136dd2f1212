"""The response store: Responses API answers kept per user for a while, for previous_response_id.

Every read names the user, so nobody reads, continues or deletes another user's response: to them
it does not exist. Expired rows are invisible at once and deleted by the serving processes
themselves, a bounded batch at most once a minute each, so no cron job is needed.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select

from gateway.clock import Clock
from gateway.store.database import Database
from gateway.store.tables import responses

PURGE_EVERY_S = 60.0
PURGE_BATCH = 1000  # rows deleted per purge, so one purge never holds a long lock


@dataclass(frozen=True)
class StoredResponse:
    id: str
    channel: str  # the provider/channel that answered natively, "" when translated
    response: dict[str, Any]
    input_items: list[dict[str, Any]]

    def history(self) -> list[dict[str, Any]]:
        """The conversation up to and including this response: its input items, then its output."""
        output = self.response.get("output")
        items = [item for item in output if isinstance(item, dict)] if isinstance(output, list) else []
        return self.input_items + items


class ResponseStore:
    """Saves, finds and deletes stored responses; retention is in days (0 keeps nothing)."""

    def __init__(self, db: Database, clock: Clock, retention_days: int) -> None:
        self.db = db
        self.clock = clock
        self.retention = timedelta(days=retention_days)
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def save(
        self, user_id: int, response: dict[str, Any], input_items: list[dict[str, Any]], channel: str = ""
    ) -> None:
        """Keep one response; a response id already kept (a native upstream's replay) stays as it was."""
        if not self.retention or not isinstance(response.get("id"), str):
            return
        now = self.clock.now()
        with self.db.session_scope() as conn:
            if conn.execute(select(responses.c.id).where(responses.c.id == response["id"])).first():
                return
            conn.execute(
                insert(responses).values(
                    id=response["id"],
                    user_id=user_id,
                    channel=channel,
                    response=json.dumps(response, ensure_ascii=False),
                    input_items=json.dumps(input_items, ensure_ascii=False),
                    created_at=now,
                    expires_at=now + self.retention,
                )
            )
        self._maybe_purge()

    def find(self, user_id: int, response_id: str) -> StoredResponse | None:
        """Return the user's unexpired response, or None."""
        with self.db.session_scope() as conn:
            row = conn.execute(
                select(responses.c.id, responses.c.channel, responses.c.response, responses.c.input_items)
                .where(responses.c.id == response_id)
                .where(responses.c.user_id == user_id)
                .where(responses.c.expires_at > self.clock.now())
            ).first()
        if row is None:
            return None
        return StoredResponse(row.id, row.channel, json.loads(row.response), json.loads(row.input_items))

    def delete(self, user_id: int, response_id: str) -> bool:
        """Delete the user's response; False when there was none to delete."""
        with self.db.session_scope() as conn:
            gone = conn.execute(
                delete(responses).where(responses.c.id == response_id).where(responses.c.user_id == user_id)
            )
        return bool(gone.rowcount)

    def purge(self) -> int:
        """Delete up to PURGE_BATCH expired responses; return how many went."""
        with self.db.session_scope() as conn:
            expired = select(responses.c.id).where(responses.c.expires_at <= self.clock.now())
            ids = [row.id for row in conn.execute(expired.limit(PURGE_BATCH))]
            if ids:
                conn.execute(delete(responses).where(responses.c.id.in_(ids)))
        return len(ids)

    def _maybe_purge(self) -> None:
        with self._lock:
            now = self.clock.monotonic()
            if now < self._next_purge:
                return
            self._next_purge = now + PURGE_EVERY_S
        self.purge()

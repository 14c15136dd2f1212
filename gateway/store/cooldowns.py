"""Channel cooldowns in the store, shared by every worker and host: one row per channel, reused.

A worker posts a failure here and reads the board every half second (routing/failover.py), so a dead
channel costs one failed try in all, not one per worker. Times are the posting host's wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import DateTime, String, bindparam, select, text

from gateway.clock import Clock, as_utc
from gateway.store.database import Database
from gateway.store.tables import channel_cooldowns

# A later cooldown never shortens a longer one: a retry-after of ten minutes outlasts a 30 s bench.
_POST = text(
    """
    INSERT INTO channel_cooldowns (channel, until_at) VALUES (:channel, :until)
    ON CONFLICT (channel) DO UPDATE SET until_at = CASE
        WHEN excluded.until_at > channel_cooldowns.until_at THEN excluded.until_at
        ELSE channel_cooldowns.until_at END
    """
).bindparams(bindparam("channel", type_=String), bindparam("until", type_=DateTime(timezone=True)))
_READ = select(channel_cooldowns.c.channel, channel_cooldowns.c.until_at).where(
    channel_cooldowns.c.until_at > bindparam("now", type_=DateTime(timezone=True))
)


def post(db: Database, channel: str, until: datetime) -> None:
    """Bench a channel until a moment, unless it is benched longer already."""
    with db.session_scope() as conn:
        conn.execute(_POST, {"channel": channel, "until": until})


def read(db: Database, now: datetime) -> dict[str, datetime]:
    """Return the channels still cooling down at `now`, with the end of each cooldown."""
    with db.session_scope() as conn:
        return {row.channel: as_utc(row.until_at) for row in conn.execute(_READ, {"now": now})}


class SharedCooldowns:
    """The failover's CooldownBoard on the store (seconds relative to this host's clock)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def post(self, channel: str, seconds: float) -> None:
        post(self.db, channel, self.clock.now() + timedelta(seconds=seconds))

    def read(self) -> dict[str, float]:
        now = self.clock.now()
        return {key: (until - now).total_seconds() for key, until in read(self.db, now).items()}

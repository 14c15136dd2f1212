"""Settle each request exactly once (its usage row and its money), and sweep holds of dead workers.

A settlement the database refuses is spooled to local disk and replayed by the hold keeper until
it is written; the keeper's heartbeat and the sweep's keep list make sure the sweep never takes it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta

from gateway.clock import Clock
from gateway.config.settings import Settings
from gateway.observability.observer import Observers, Settled
from gateway.providers.base import Usage
from gateway.relay import pricing
from gateway.relay.call import Call
from gateway.relay.keeper import HoldKeeper
from gateway.relay.spool import Spool
from gateway.store import aggregates, billing
from gateway.store.billing import Hold, UsageRecord
from gateway.store.database import Database

log = logging.getLogger("gateway.relay")
PRUNE_EVERY = 300.0  # seconds between two retention passes of one process
PRUNE_BATCHES = 10  # batches per pass: a pass is bounded, and the next one carries on


class Settlement:
    """Writes usage rows and moves money for the relay; releases stale holds once a minute."""

    def __init__(self, settings: Settings, db: Database, clock: Clock, observers: Observers) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.observers = observers
        self._sweep_lock = threading.Lock()
        self._next_sweep = 0.0
        self._prune_lock = threading.Lock()
        self._next_prune = 0.0
        self.spool = Spool(settings.spool_dir)
        self.keeper = HoldKeeper(db, clock, settings.hold_timeout, self.spool.holds, self.replay)

    def held(self, hold: Hold) -> None:
        """Start the heartbeat of a hold just reserved: it lives as long as its request."""
        self.keeper.add(hold.ref)

    def settle(
        self, call: Call, hold: Hold, usage: Usage | None, status: int, outcome: str, first_byte: float | None
    ) -> None:
        """Write the one usage row and move the money; retried, because the money is real."""
        usage = usage or Usage()
        hold = replace(hold, model=call.answered.public_id)  # the row names the model that answered
        elapsed = self.clock.monotonic() - call.started
        cost = pricing.cost_micros(call.answered.model, usage)
        # The hold was a cap: the upstream was told the held output cap, so more than that is the
        # provider's bug, and the operator absorbs it, not the balance (which never goes below zero).
        overrun = max(0, cost - hold.amount_micros)
        if overrun:
            log.warning(
                "request %s: %s reported usage costing %d micro-USD, %d over the hold; charged the hold",
                call.request_id,
                call.answered.public_id,
                cost,
                overrun,
            )
        record = UsageRecord(
            status=status,
            outcome=outcome,
            stream=call.stream,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_micros=cost - overrun,
            latency_ms=int(elapsed * 1000),
            ttfb_ms=None if first_byte is None else int((first_byte - call.started) * 1000),
            estimated=usage.estimated,
        )
        self._write(hold, record, self.clock.now())
        self.keeper.discard(hold.ref)
        self.observers.settled(_event(call, record, overrun))
        self.sweep_if_due()
        self.prune_if_due()

    def _write(self, hold: Hold, record: UsageRecord, now: datetime) -> None:
        """Settle now, or spool the settlement to be written by the keeper once the database is back."""
        try:
            with self.db.session_scope(autocommit=True) as conn:  # one statement on PostgreSQL
                if not billing.settle(conn, hold, record, now):
                    log.warning("request %s was already settled or swept", hold.request_id)
            return
        except Exception:
            log.exception("settling request %s failed; spooling it to settle later", hold.request_id)
        try:
            self.spool.put(hold, record, now)
        except OSError:
            # Neither the database nor the disk: the hold stays, and the sweep frees it in the end.
            log.critical("request %s not spooled; its charge is lost", hold.request_id, exc_info=True)
            return
        self.keeper.kick()

    def replay(self) -> None:
        """Write every spooled settlement the database now takes; each is written once."""
        for entry in self.spool.pending():
            with self.db.session_scope(autocommit=True) as conn:
                if not billing.settle(conn, entry.hold, entry.record, entry.settled_at):
                    # Settled by another worker's replay, or swept after an outage longer than
                    # hold_timeout on another host: nothing more can be charged safely.
                    log.warning("spooled request %s was already settled or swept", entry.hold.request_id)
            self.spool.done(entry)
            log.warning("spooled request %s is settled", entry.hold.request_id)

    def sweep_if_due(self) -> None:
        """Release holds of dead workers, at most once a minute per process; no cron needed."""
        now = self.clock.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + min(60.0, self.settings.hold_timeout / 2)
            with self.db.session_scope() as conn:
                keep = self.keeper.live() | self.spool.holds()
                stale = timedelta(seconds=self.settings.hold_timeout)
                swept = billing.sweep(conn, stale, self.clock.now(), keep)
            if swept:
                log.warning("released %d hold(s) not refreshed for %ss", swept, self.settings.hold_timeout)
        except Exception:
            log.exception("sweeping stale holds failed")
        finally:
            self._sweep_lock.release()

    def prune_if_due(self) -> None:
        """Delete usage rows past usage_retention_days, a few batches every PRUNE_EVERY seconds."""
        days = self.settings.usage_retention_days
        now = self.clock.monotonic()
        if days <= 0 or now < self._next_prune or not self._prune_lock.acquire(blocking=False):
            return
        try:
            self._next_prune = now + PRUNE_EVERY
            for _ in range(PRUNE_BATCHES):
                with self.db.session_scope() as conn:
                    if aggregates.prune_batch(conn, days, self.clock.now()) < aggregates.PRUNE_BATCH:
                        break
        except Exception:
            log.exception("deleting usage rows past the retention failed")
        finally:
            self._prune_lock.release()


def _event(call: Call, record: UsageRecord, overrun: int) -> Settled:
    return Settled(
        request_id=call.request_id,
        key_prefix=call.principal.key_prefix,
        user_id=call.principal.user_id,
        model=call.answered.public_id,
        channel=call.trace.channel,
        attempts=call.trace.attempts,
        status=record.status,
        outcome=record.outcome,
        stream=record.stream,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        cost_micros=record.cost_micros,
        estimated=record.estimated,
        latency_ms=record.latency_ms,
        ttfb_ms=record.ttfb_ms,
        upstream_s=call.timing.upstream_s,
        overhead_s=call.timing.overhead_s(record.latency_ms / 1000),
        overrun_micros=overrun,
    )

"""The heartbeat on live holds: one thread per process says, in batches, which requests still run.

The sweep frees only holds whose heartbeat_at (else created_at) is older than hold_timeout, so a
request that runs for hours keeps its hold, and a dead worker's holds are freed. The same thread
replays the settlement spool, right after refreshing, so a spooled hold is never seen stale.
The thread starts with the first hold and stops when there is nothing left to keep.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from gateway.clock import Clock
from gateway.store import billing
from gateway.store.billing import HoldRef
from gateway.store.database import Database

log = logging.getLogger("gateway.relay")
BATCH = 250  # holds (two binds each) per UPDATE: one statement, well under every driver's bind limit


class HoldKeeper:
    """The set of this process's requests in flight, refreshed in the database every beat."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        hold_timeout: float,
        pending: Callable[[], set[HoldRef]],
        replay: Callable[[], None],
    ) -> None:
        self.db = db
        self.clock = clock
        # Four beats per timeout: a beat may fail or be late three times before a hold looks stale.
        self.beat = hold_timeout / 4
        self.tick = min(1.0, self.beat)  # how soon a spooled settlement is retried
        self.pending = pending
        self.replay = replay
        self._live: set[HoldRef] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._wake = threading.Event()

    def add(self, ref: HoldRef) -> None:
        """Keep this hold alive until discard()."""
        with self._lock:
            self._live.add(ref)
            self._ensure_running()

    def discard(self, ref: HoldRef) -> None:
        with self._lock:
            self._live.discard(ref)

    def kick(self) -> None:
        """Start the thread (if it is not running) to replay what is spooled."""
        with self._lock:
            self._ensure_running()
        self._wake.set()

    def live(self) -> set[HoldRef]:
        with self._lock:
            return set(self._live)

    def _ensure_running(self) -> None:
        # A forked worker inherits the object but not the thread: the pid tells.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="gateway-hold-keeper", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        last_beat = self.clock.monotonic()
        while True:
            self._wake.wait(self.tick)
            self._wake.clear()
            try:
                spooled = self.pending()
                with self._lock:
                    if not self._live and not spooled:
                        self._thread = None  # add() starts a new one
                        return
                    ids = self._live | spooled
                # A spooled hold is refreshed before its replay, so no sweep sees it stale meanwhile.
                if self.clock.monotonic() - last_beat >= self.beat or spooled:
                    self._touch(ids)
                    last_beat = self.clock.monotonic()
                if spooled:
                    self.replay()
            except Exception:
                log.exception("the hold keeper's beat failed; it tries again at the next one")

    def _touch(self, ids: set[HoldRef]) -> None:
        ordered = sorted(ids)
        now = self.clock.now()
        for start in range(0, len(ordered), BATCH):
            with self.db.session_scope() as conn:
                billing.touch(conn, ordered[start : start + BATCH], now)

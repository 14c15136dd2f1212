"""A short-lived, bounded map from key hash to principal, so most requests skip the store."""

from __future__ import annotations

import threading
from collections.abc import Callable

from gateway.clock import SYSTEM, Clock
from gateway.store.principals import Principal


class KeyCache:
    """Principals by key hash for `ttl` seconds of the clock.

    A revoked key stops working within `ttl` seconds on every host; the process that revokes
    it forgets it at once.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000, clock: Clock = SYSTEM) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str, load: Callable[[], Principal | None]) -> Principal | None:
        """Return the cached principal (or cached absence), else load() it and remember the answer."""
        now = self.clock.monotonic()
        entry = self._entries.get(key_hash)
        if entry is not None and entry[0] > now:
            return entry[1]
        principal = load()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key_hash] = (now + self.ttl, principal)
        return principal

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

"""A short-lived, bounded map from key hash to principal, so most requests skip the store.

Every change to who may call (a key revoked, disabled, expired early, its models or rate limits
changed) bumps one shared counter in the store (store/changes.py). Each process reads that counter
at most every `check_every` seconds, on a request, and forgets every cached principal when it moved:
so a change reaches every worker of every host within about `check_every`, while the common request
costs no query at all.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from gateway.clock import SYSTEM, Clock
from gateway.store.principals import Principal


class KeyCache:
    """Principals by key hash for `ttl` seconds of the clock, and failed lookups beside them.

    Failed lookups are kept apart, in a least-recently-used map of their own, so a flood of random
    well-formed keys evicts only other failed lookups, never a valid key.
    """

    def __init__(
        self,
        ttl: float,
        max_entries: int = 10_000,
        max_missing: int = 1_000,
        clock: Clock = SYSTEM,
        version: Callable[[], int] | None = None,
        check_every: float = 0.5,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_missing = max_missing
        self.clock = clock
        self.check_every = check_every
        self._version = version
        self._found: dict[str, tuple[float, Principal]] = {}
        self._missing: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._generation = 0  # moves on every clear: a load that began before it is not kept
        self._seen: int | None = None
        self._checked_at = float("-inf")

    def get(self, key_hash: str, load: Callable[[], Principal | None]) -> Principal | None:
        """Return the cached principal (or cached absence), else load() it and remember the answer."""
        now = self.clock.monotonic()
        if self._version is not None and self.ttl > 0 and now - self._checked_at >= self.check_every:
            self._check(now)
        found = self._found.get(key_hash)
        if found is not None and found[0] > now:
            return found[1]
        missing_until = self._missing.get(key_hash)
        if missing_until is not None and missing_until > now:
            with self._lock:
                if key_hash in self._missing:
                    self._missing.move_to_end(key_hash)
            return None
        generation = self._generation
        principal = load()
        with self._lock:
            if generation == self._generation:
                self._remember(key_hash, principal, now + self.ttl)
        return principal

    def _remember(self, key_hash: str, principal: Principal | None, until: float) -> None:
        if principal is None:
            self._found.pop(key_hash, None)
            self._missing[key_hash] = until
            self._missing.move_to_end(key_hash)
            while len(self._missing) > self.max_missing:
                self._missing.popitem(last=False)
            return
        self._missing.pop(key_hash, None)
        if key_hash not in self._found and len(self._found) >= self.max_entries:
            now = self.clock.monotonic()
            for stale in [k for k, (expiry, _) in self._found.items() if expiry <= now]:
                del self._found[stale]
            if len(self._found) >= self.max_entries:
                del self._found[next(iter(self._found))]  # the oldest: it would expire first
        self._found[key_hash] = (until, principal)

    def _check(self, now: float) -> None:
        """Read the shared change counter; forget everything if it moved since the last read."""
        # Threads that find a check due wait for it, rather than serve what may be stale meanwhile:
        # after an idle spell the first burst of requests would otherwise all pass on old entries.
        with self._check_lock:
            if now - self._checked_at < self.check_every:
                return  # another thread read it while this one waited
            assert self._version is not None
            version = self._version()
            if version != self._seen:
                self.clear()
                self._seen = version
            self._checked_at = now

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._found.clear()
            self._missing.clear()

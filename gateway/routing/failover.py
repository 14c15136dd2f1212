"""Which channel to try next: a weighted order, cooldowns after failures, then the model's fallbacks.

A channel that fails sits out of the plans for its provider's cooldown. Each worker keeps the
cooldowns in memory and, given a board (the store's, shared by every worker and host), posts each
failure there and reads the others' at most every PULL_EVERY seconds: one failure benches a channel
everywhere within about that long, and the hot path pays one small read per worker per interval.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

from gateway.errors import (
    GatewayError,
    UpstreamAuthError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from gateway.routing.catalog import Channel, Target

MAX_COOLDOWN = 600.0  # a retry-after longer than this does not bench a channel for longer
PULL_EVERY = 0.5  # seconds between two reads of the shared board by one worker
log = logging.getLogger("gateway.routing")
Attempt = tuple[Target, Channel]


def retryable(exc: GatewayError) -> bool:
    """Another channel may answer: transport failures, timeouts, 5xx, 429 and refused credentials.

    Any other upstream 4xx is about the request itself, and every channel would refuse it alike.
    """
    if not isinstance(exc, UpstreamError):
        return False
    if isinstance(exc, UpstreamStatusError):
        return exc.status >= 500 or exc.status in (408, 429)
    return True


def channel_down(exc: GatewayError) -> bool:
    """The channel itself failed (unreachable, too slow, its key refused), not the model asked of it."""
    return isinstance(exc, UpstreamConnectionError | UpstreamTimeoutError | UpstreamAuthError)


def retry_after(exc: GatewayError) -> float:
    """Return the upstream's retry-after(-ms) in seconds, 0 when it gave none or an HTTP-date."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            seconds = float(exc.headers[name]) / scale
        except (KeyError, ValueError):
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return 0.0


class CooldownBoard(Protocol):
    """Cooldowns shared by every worker and host; seconds are relative, so clocks need not agree."""

    def post(self, channel: str, seconds: float) -> None:
        """Bench a channel for this many seconds from now (never shortening a longer cooldown)."""
        ...

    def read(self) -> dict[str, float]:
        """Return the channels cooling down and the seconds each has left."""
        ...


class Failover:
    """Plans the attempts of one request and remembers which channels failed lately."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        board: CooldownBoard | None = None,
    ) -> None:
        self._clock = clock
        self._rng = rng
        self._board = board
        self._until: dict[str, float] = {}  # channel key -> end of its cooldown
        self._lock = threading.Lock()
        self._pull_lock = threading.Lock()
        self._next_pull = float("-inf")

    def plan(self, targets: list[Target]) -> list[Attempt]:
        """Return every (target, channel) to try, in order.

        Each target's channels that are not cooling down come in a weighted random order, the targets
        in the order given. When every channel is cooling down, the one that recovers first is tried
        anyway: a request is never refused without one try.
        """
        now = self._clock()
        self._pull(now)
        with self._lock:
            until = dict(self._until)
        plan: list[Attempt] = []
        for target in targets:
            ready = [c for c in target.channels if until.get(c.key, 0.0) <= now]
            # Efraimidis–Spirakis: sorting by u ** (1 / weight) draws without replacement by weight.
            ready.sort(key=lambda c: self._rng() ** (1.0 / c.weight), reverse=True)
            plan += [(target, c) for c in ready]
        if not plan:
            every = [(t, c) for t in targets for c in t.channels]
            plan = [min(every, key=lambda attempt: until.get(attempt[1].key, 0.0))]
        return plan

    def failed(self, target: Target, channel: Channel, exc: GatewayError) -> None:
        """Bench a channel for its provider's cooldown, longer if its retry-after asks; 0 turns this off."""
        seconds = target.provider.cooldown
        if seconds <= 0:
            return
        seconds = min(MAX_COOLDOWN, max(seconds, retry_after(exc)))
        self._bench(channel.key, self._clock() + seconds)
        if self._board is not None:
            try:
                self._board.post(channel.key, seconds)
            except Exception:  # sharing fails open: this worker still benches the channel
                log.exception("posting the cooldown of %s to the shared board failed", channel.key)

    def _bench(self, key: str, until: float) -> None:
        with self._lock:
            self._until[key] = max(until, self._until.get(key, until))

    def _pull(self, now: float) -> None:
        """Merge the board's cooldowns, at most every PULL_EVERY seconds, one thread at a time."""
        if self._board is None or now < self._next_pull or not self._pull_lock.acquire(blocking=False):
            return
        try:
            self._next_pull = now + PULL_EVERY
            for key, left in self._board.read().items():
                self._bench(key, now + min(left, MAX_COOLDOWN))
        except Exception:  # a store hiccup must not fail requests: plan with what this worker knows
            log.exception("reading the shared cooldowns failed")
        finally:
            self._pull_lock.release()

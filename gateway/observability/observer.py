"""What the relay tells its observers: each settled request, streams opening and closing, failed tries.

Observability fails open: an observer that raises is logged and skipped; it never fails a request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.errors import UpstreamError

log = logging.getLogger("gateway.observability")


@dataclass(frozen=True)
class Settled:
    """One request, once its usage row is written: who, what answered, how it ended, where time went."""

    request_id: str
    key_prefix: str
    user_id: int
    model: str  # the provider:model that answered (a fallback's when one did)
    channel: str
    attempts: int
    status: int
    outcome: str
    stream: bool
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    estimated: bool
    latency_ms: int
    ttfb_ms: int | None
    upstream_s: float
    overhead_s: float
    overrun_micros: int = 0  # reported cost beyond the hold: not charged, the operator's to see


class Observer(Protocol):
    """Told of every settled request, streams opening and closing, and failed upstream tries."""

    def settled(self, event: Settled) -> None: ...

    def streams_changed(self, delta: int) -> None: ...

    def attempt_failed(self, channel: str, exc: UpstreamError) -> None: ...


class Observers:
    """Hands each event to every observer in turn."""

    def __init__(self, observers: Sequence[Observer] = ()) -> None:
        self.observers = tuple(observers)

    def settled(self, event: Settled) -> None:
        for observer in self.observers:
            try:
                observer.settled(event)
            except Exception:
                log.exception("an observer failed on a settled request")

    def streams_changed(self, delta: int) -> None:
        for observer in self.observers:
            try:
                observer.streams_changed(delta)
            except Exception:
                log.exception("an observer failed on a stream count")

    def attempt_failed(self, channel: str, exc: UpstreamError) -> None:
        for observer in self.observers:
            try:
                observer.attempt_failed(channel, exc)
            except Exception:
                log.exception("an observer failed on a failed try")

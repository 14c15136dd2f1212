"""One upstream attempt's deadlines: the first body byte, each later read, and the whole answer."""

from __future__ import annotations

import time

from gateway.errors import UpstreamTimeoutError
from gateway.providers.base import UpstreamRequest


class Deadlines:
    """One attempt's deadlines: the first body byte, each later read, and the whole answer."""

    def __init__(self, req: UpstreamRequest, sent: float) -> None:
        self.provider = req.provider
        self.req = req
        self.first_byte_at = sent + req.first_byte_timeout
        self.total_at = sent + req.total_timeout
        self.started = False  # has any body byte arrived?

    def wait(self) -> float:
        """Return how long the next read may block; raise the timeout that has already passed."""
        now = time.monotonic()
        until = min(self.total_at, now + self.req.idle_timeout if self.started else self.first_byte_at)
        if until <= now:
            raise self.expired(now)
        return until - now

    def expired(self, now: float | None = None) -> UpstreamTimeoutError:
        """Return the error for the deadline that has passed (or was the nearer one at a socket timeout)."""
        now = time.monotonic() if now is None else now
        name, req = self.provider, self.req
        if now >= self.total_at - 0.001 or (
            not self.started and self.total_at <= self.first_byte_at
        ):  # the total was the nearer deadline
            return UpstreamTimeoutError(f"Provider '{name}' did not finish within {req.total_timeout:g} s.")
        if not self.started:
            return UpstreamTimeoutError(
                f"Provider '{name}' did not start answering within {req.first_byte_timeout:g} s."
            )
        return UpstreamTimeoutError(f"Provider '{name}' sent nothing for {req.idle_timeout:g} s mid-answer.")

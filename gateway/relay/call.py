"""One request as the relay sees it: who asked, for what, which attempt answered, where time went."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InvalidRequestError, UpstreamTimeoutError
from gateway.routing.catalog import Target
from gateway.store.principals import Principal
from gateway.surfaces.openai_chat import ParsedRequest


@dataclass
class Timing:
    """Where a request's time went, filled in as it runs: the rest is the gateway's own overhead."""

    upstream_s: float = 0.0  # waiting on the upstream: connecting, its answer, each streamed read
    client_s: float = 0.0  # streams: handing each chunk to the client's socket

    def overhead_s(self, elapsed: float) -> float:
        return max(0.0, elapsed - self.upstream_s - self.client_s)


@dataclass
class Trace:
    """Which attempt is running or answered: its target and channel, and how many were made."""

    attempts: int = 0
    target: Target | None = None
    channel: str = ""


@dataclass(frozen=True)
class Call:
    """Everything the relay needs about one authorised, validated request."""

    request_id: str
    principal: Principal
    target: Target
    request: ParsedRequest
    raw_size: int  # bytes of the client's body
    started: float  # the clock's monotonic time when the request arrived
    timing: Timing = field(default_factory=Timing, compare=False)
    trace: Trace = field(default_factory=Trace, compare=False)

    @property
    def body(self) -> dict[str, Any]:
        return self.request.body

    @property
    def stream(self) -> bool:
        return self.request.stream

    @property
    def operation(self) -> str:
        return self.request.operation

    @property
    def answered(self) -> Target:
        """The target of the last attempt: the one that answered, once the call has succeeded."""
        return self.trace.target or self.target

    def candidates(self) -> list[Target]:
        """The target, then the fallbacks this key may use that offer the operation."""
        fallbacks = [
            t
            for t in self.target.fallbacks
            if self.principal.may_use(t.public_id) and t.adapter.supports(self.operation)
        ]
        return [self.target, *fallbacks]


def outcome_of(exc: BaseException) -> str:
    """The usage row's outcome for a request that ended in this error."""
    if isinstance(exc, InvalidRequestError):
        return "invalid_request"  # an adapter found a field its provider's format cannot carry
    return "timeout" if isinstance(exc, UpstreamTimeoutError) else "upstream_error"

"""One request as the relay sees it: who asked, for what, which attempt answered, where time went."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.accounts import Principal
from gateway.catalog import Target
from gateway.errors import InvalidRequestError, UpstreamTimeoutError
from gateway.providers.base import CHAT, EMBEDDINGS


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
    body: dict[str, Any]
    raw_size: int
    stream: bool
    started: float  # time.monotonic() when the request arrived
    operation: str = CHAT  # CHAT, COMPLETIONS or EMBEDDINGS (providers.base)
    timing: Timing = field(default_factory=Timing, compare=False)
    trace: Trace = field(default_factory=Trace, compare=False)

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

    @property
    def client_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def max_output(self, default: int, target: Target | None = None) -> int:
        if self.operation == EMBEDDINGS:
            return 0  # embeddings are billed on input tokens only
        # n choices each produce up to the cap (routing validates n: at most MAX_CHOICES).
        n = self.body.get("n")
        choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
        for name in ("max_completion_tokens", "max_tokens"):
            value = self.body.get(name)
            if isinstance(value, int) and value > 0:
                return value * choices
        # The provider's max_tokens is what an adapter sends when the client sets none: hold that much.
        target = target or self.target
        return choices * (target.model.max_output_tokens or target.provider.max_tokens or default)


def outcome_of(exc: BaseException) -> str:
    """The usage row's outcome for a request that ended in this error."""
    if isinstance(exc, InvalidRequestError):
        return "invalid_request"  # an adapter found a field its provider's format cannot carry
    return "timeout" if isinstance(exc, UpstreamTimeoutError) else "upstream_error"

"""Try a request's planned channels in turn until one answers; only failures another may fix move on.

This runs before the client has received a byte, so a retry changes nothing it has seen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from gateway.errors import GatewayError, InvalidRequestError, ServiceUnavailableError, UpstreamError
from gateway.observability.observer import Observers
from gateway.relay.call import Call
from gateway.routing import failover
from gateway.routing.catalog import Channel, Target
from gateway.routing.failover import Failover

log = logging.getLogger("gateway.relay")
T = TypeVar("T")


def run(
    call: Call,
    planner: Failover,
    max_attempts: int,
    observers: Observers,
    once: Callable[[Target, Channel], T],
) -> T:
    """Return once()'s answer from the first channel that gives one, or raise the last failure."""
    failure: GatewayError | None = None
    broken: set[str] = set()  # channels that failed as channels, whatever model they were asked for
    for target, channel in planner.plan(call.candidates()):
        if call.trace.attempts >= max_attempts:
            break
        if channel.key in broken:
            continue
        call.trace.attempts += 1
        call.trace.target, call.trace.channel = target, channel.key
        try:
            return once(target, channel)
        except InvalidRequestError as exc:
            if target is call.target:
                raise traced(exc, call) from None  # the request does not fit the model it names
            call.trace.attempts -= 1  # skipped before any upstream call: not a try
            log.info("request %s: fallback %s cannot carry it", call.request_id, target.public_id)
        except UpstreamError as exc:
            if not failover.retryable(exc):
                raise traced(exc, call) from None
            planner.failed(target, channel, exc)
            if failover.channel_down(exc):
                broken.add(channel.key)  # a fallback on the same provider would wait on it again
            observers.attempt_failed(channel.key, exc)
            log.warning("request %s: %s failed (%s)", call.request_id, channel.key, exc.message)
            failure = exc
    if failure is None:  # the primary sat out a cooldown, and no fallback could take the request
        call.trace.target = call.target  # nothing answered: the row and headers name what was asked
        failure = ServiceUnavailableError(
            f"Every channel of `{call.target.public_id}` is cooling down after failures; try again later."
        )
    raise traced(failure, call)


def traced(exc: GatewayError, call: Call) -> GatewayError:
    """Name the last model tried and the number of tries on an error, as on an answer."""
    exc.headers["X-Gateway-Model"] = call.answered.public_id
    exc.headers["X-Gateway-Attempts"] = str(call.trace.attempts)
    return exc

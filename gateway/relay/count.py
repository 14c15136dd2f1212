"""Count a Messages request's input tokens: the upstream's own count where it has one, else an estimate.

Counting costs nothing at Anthropic, so nothing is held or billed here. It is advisory (clients use
it to decide when to compact a conversation), so one channel is asked once, and a count the upstream
cannot give (no such endpoint, unreachable, too slow, a bad answer) becomes the estimate instead of
an error: Claude Code falls back to many max_tokens=1 probes, which are billed, when counting fails.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import UpstreamError, UpstreamStatusError
from gateway.providers.base import COUNT_TOKENS
from gateway.routing.catalog import Target
from gateway.routing.failover import Failover
from gateway.surfaces.anthropic_messages.count import estimate_input_tokens
from gateway.upstream.transport import Upstream

log = logging.getLogger("gateway.relay")
MAX_ANSWER_BYTES = 1 << 16  # a count is a few bytes of JSON
# The upstream's refusals of the request itself, which the estimate would only hide: the same body
# sent to /v1/messages would be refused too. 404 and 405 mean the endpoint is missing, not the body.
REFUSALS = frozenset({400, 413, 422})
Estimate = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Count:
    body: bytes  # the client-ready JSON: {"input_tokens": N, …}
    estimated: bool


def count_tokens(
    upstream: Upstream,
    planner: Failover,
    target: Target,
    body: dict[str, Any],
    headers: Sequence[tuple[str, str]],
    request_id: str,
    operation: str = COUNT_TOKENS,
    estimate: Estimate | None = None,
) -> Count:
    """Return the upstream's count for the body when its adapter has one, else the estimate.

    operation is the adapter's counting operation (Anthropic's count_tokens by default, or the
    Responses API's input_tokens); estimate returns the answer made up when there is no count.
    """
    if target.adapter.supports(operation):
        try:
            return Count(_native(upstream, planner, target, body, headers, operation), estimated=False)
        except UpstreamStatusError as exc:
            if exc.status in REFUSALS:
                raise
            failure: UpstreamError = exc
        except UpstreamError as exc:
            failure = exc
        log.warning(
            "request %s: %s could not count tokens (%s); estimated instead",
            request_id,
            target.public_id,
            failure.message,
        )
    count = estimate(body) if estimate is not None else {"input_tokens": estimate_input_tokens(body)}
    return Count(json.dumps(count).encode(), estimated=True)


def _native(
    upstream: Upstream,
    planner: Failover,
    target: Target,
    body: dict[str, Any],
    headers: Sequence[tuple[str, str]],
    operation: str,
) -> bytes:
    _, channel = planner.plan([target])[0]
    adapter = channel.adapter
    request = adapter.build_request(body, target.model.upstream_id, False, operation, headers=headers)
    resp = upstream.send(request)
    try:
        raw = resp.read(MAX_ANSWER_BYTES)
    finally:
        resp.close()
    if resp.status >= 400:
        raise adapter.parse_error(resp.status, raw, resp.headers)
    return adapter.parse_response(raw, target.public_id, operation).body

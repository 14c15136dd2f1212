"""GET /metrics for Prometheus, closed to all but a token or the allowed networks."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, request

from gateway import billing
from gateway.billing import UsageRecord
from gateway.blueprints import services
from gateway.call import Call
from gateway.errors import (
    PermissionDeniedError,
    UpstreamAuthError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from gateway.metrics import CONTENT_TYPE, Metrics

bp = Blueprint("metrics", __name__)


class MetricsObserver:
    """Counts every settled request, the streams in flight and failed upstream tries, for the relay."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def settled(self, call: Call, record: UsageRecord) -> None:
        latency = record.latency_ms / 1000
        self.metrics.record(
            model=call.answered.public_id,
            status=record.status,
            outcome=record.outcome,
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            cost_micros=record.cost_micros,
            latency_s=latency,
            upstream_s=call.timing.upstream_s,
            overhead_s=call.timing.overhead_s(latency),
            ttfb_s=None if record.ttfb_ms is None else record.ttfb_ms / 1000,
        )

    def streams_changed(self, delta: int) -> None:
        self.metrics.active_streams.inc(delta)

    def attempt_failed(self, call: Call, channel: str, exc: UpstreamError) -> None:
        self.metrics.upstream_failures.labels(channel, failure_reason(exc)).inc()


def failure_reason(exc: UpstreamError) -> str:
    """A label of few values: the upstream's own error codes are its to choose, so not those."""
    if isinstance(exc, UpstreamStatusError):
        return f"http_{exc.status}"
    return {
        UpstreamTimeoutError: "timeout",
        UpstreamConnectionError: "connection",
        UpstreamAuthError: "auth",
        UpstreamProtocolError: "protocol",
    }.get(type(exc), "other")


def _allowed() -> bool:
    settings = services().settings
    if settings.metrics_token:
        header = request.headers.get("Authorization", "")
        return hmac.compare_digest(header.encode(), f"Bearer {settings.metrics_token}".encode())
    try:
        peer = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(net) for net in settings.metrics_allow)


@bp.get("/metrics")
def scrape() -> Response:
    if not _allowed():
        raise PermissionDeniedError("Metrics are open only to the metrics token or the allowed networks.")
    svc = services()

    def read_holds() -> tuple[int, int]:
        with svc.db.session_scope() as conn:
            return billing.holds_outstanding(conn)

    return Response(svc.metrics.render(read_holds), content_type=CONTENT_TYPE)

"""GET /metrics for Prometheus, closed to all but a token or the allowed networks."""

from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, request

from gateway.blueprints.services import services
from gateway.errors import (
    PermissionDeniedError,
)
from gateway.observability.metrics import CONTENT_TYPE
from gateway.store import billing

bp = Blueprint("metrics", __name__)


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

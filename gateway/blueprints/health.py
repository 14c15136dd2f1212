"""Health for load balancers and orchestrators: no auth, tiny answers."""

from __future__ import annotations

from flask import Blueprint

from gateway.blueprints.services import services
from gateway.errors import ServiceUnavailableError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    """Say the process is alive; touches nothing else."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> dict[str, object]:
    """Say whether this process can serve: the database answers and the catalog is loaded."""
    svc = services()
    try:
        svc.db.ping()
    except Exception as exc:
        raise ServiceUnavailableError("The gateway's database is not reachable.", code="not_ready") from exc
    return {"status": "ready", "models": len(svc.catalog.targets)}

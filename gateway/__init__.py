"""The gateway: an OpenAI-compatible LLM API gateway. create_app() is the only wiring point."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway.accounts import KeyCache
from gateway.blueprints import Services, admin, console, errors, health, metrics, routing
from gateway.catalog import Catalog
from gateway.config import Settings, load_settings
from gateway.db import Database
from gateway.metrics import Metrics
from gateway.relay import Relay
from gateway.upstream import Upstream

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
log = logging.getLogger("gateway")


def _assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    # fullmatch: match() lets "$" accept a trailing newline, which would then be echoed into a header.
    g.request_id = given if _REQUEST_ID.fullmatch(given) else "req_" + uuid.uuid4().hex


def _echo_request_id(resp: Response) -> Response:
    resp.headers["X-Request-Id"] = g.get("request_id", "")
    return resp


def create_app(test_config: dict[str, Any] | None = None, settings: Settings | None = None) -> Flask:
    """Build the app from the settings (or test_config laid over them)."""
    settings = settings or load_settings(test_config)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["TESTING"] = settings.testing
    db = Database(settings.database_url, settings.db_pool_size)
    catalog = Catalog(settings)
    for model in catalog.unpriced():
        log.warning("model %s has no price: it is served at zero cost", model)
    counters = Metrics(multiprocess=bool(settings.metrics_dir))
    app.extensions["gateway"] = Services(
        settings=settings,
        db=db,
        catalog=catalog,
        relay=Relay(settings, db, Upstream(), observers=(metrics.MetricsObserver(counters),)),
        key_cache=KeyCache(settings.key_cache_ttl),
        metrics=counters,
    )
    if settings.trusted_proxies:
        # Behind nginx: the client's address and scheme come from X-Forwarded-*, set by nginx alone.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
    for bp in (errors.bp, health.bp, routing.bp, admin.bp, metrics.bp):
        app.register_blueprint(bp)
    console.init_app(app, settings)
    return app

"""The gateway: an OpenAI-compatible LLM API gateway. create_app() is the only wiring point."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from flask import Flask, Response, g, request

from gateway.accounts import KeyCache
from gateway.blueprints import Services, admin, console, errors, health, routing
from gateway.catalog import Catalog
from gateway.config import Settings, load_settings
from gateway.db import Database
from gateway.relay import Relay
from gateway.upstream import Upstream

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
log = logging.getLogger("gateway")


def _assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if _REQUEST_ID.match(given) else "req_" + uuid.uuid4().hex


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
    app.extensions["gateway"] = Services(
        settings=settings,
        db=db,
        catalog=catalog,
        relay=Relay(settings, db, Upstream()),
        key_cache=KeyCache(settings.key_cache_ttl),
    )
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
    for bp in (errors.bp, health.bp, routing.bp, admin.bp):
        app.register_blueprint(bp)
    console.init_app(app, settings)
    return app

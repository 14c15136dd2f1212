"""The gateway: an OpenAI-compatible LLM API gateway. create_app() is the only wiring point."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway import blueprints, console
from gateway.blueprints.services import build_services
from gateway.clock import SYSTEM, Clock
from gateway.config.settings import Settings, load_settings

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def _assign_request_id() -> None:
    given = request.headers.get("X-Request-Id", "")
    # fullmatch: match() lets "$" accept a trailing newline, which would then be echoed into a header.
    g.request_id = given if _REQUEST_ID.fullmatch(given) else "req_" + uuid.uuid4().hex


def _echo_request_id(resp: Response) -> Response:
    resp.headers["X-Request-Id"] = g.get("request_id", "")
    return resp


def create_app(
    test_config: dict[str, Any] | None = None, settings: Settings | None = None, clock: Clock = SYSTEM
) -> Flask:
    """Build the app from the settings (or test_config laid over them)."""
    settings = settings or load_settings(test_config)
    app = Flask(__name__, template_folder="console/templates", static_folder="console/static")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["TESTING"] = settings.testing
    app.extensions["gateway"] = build_services(settings, clock)
    if settings.trusted_proxies:
        # Behind nginx: the client's address and scheme come from X-Forwarded-*, set by nginx alone.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.before_request(_assign_request_id)
    app.after_request(_echo_request_id)
    blueprints.register(app)
    console.init_app(app, settings)
    return app

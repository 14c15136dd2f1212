"""Render every error, ours or Flask's: the OpenAI envelope with the request id, or a page in the console.

Only the console (/ and /console/...) gets HTML; /api/* and every other path keep the JSON envelope.
"""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, g, render_template
from werkzeug.exceptions import HTTPException

from gateway.blueprints.console.base import in_console
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    RequestTooLargeError,
)

bp = Blueprint("errors", __name__)
log = logging.getLogger("gateway.errors")

_BY_STATUS = {404: NotFoundError, 405: MethodNotAllowedError, 413: RequestTooLargeError}
_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed", 500: "Error"}


def _page(status: int, title: str, message: str, headers: dict[str, str] | None = None) -> Response:
    request_id = getattr(g, "request_id", "")
    try:
        html = render_template(
            "error.html", status=status, title=title, message=message, request_id=request_id
        )
    except Exception:
        # The error page itself failed (a broken template, no database for the nav): say it plainly.
        log.exception("request %s: the error page failed", request_id)
        html = f"{status} {title}. Request id: {request_id}"
        return Response(html, status=status, mimetype="text/plain", headers=headers)
    return Response(html, status=status, mimetype="text/html", headers=headers)


def render(error: GatewayError) -> Response:
    request_id = getattr(g, "request_id", "")
    if in_console():
        return _page(error.status, _TITLES.get(error.status, "Error"), error.message, error.headers)
    resp = Response(json.dumps(error.to_body(request_id)), status=error.status, mimetype="application/json")
    for name, value in error.headers.items():
        resp.headers[name] = value
    return resp


@bp.app_errorhandler(GatewayError)
def handle_gateway_error(error: GatewayError) -> Response:
    if error.status >= 500:
        log.warning(
            "request %s failed: %s %s: %s",
            getattr(g, "request_id", ""),
            error.status,
            error.code,
            error.message,
        )
    return render(error)


@bp.app_errorhandler(HTTPException)
def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if in_console():
        return _page(status, error.name, error.description or error.name)
    kind = _BY_STATUS.get(status)
    if kind is not None:
        return render(kind())
    return render(
        InvalidRequestError(
            error.description or error.name, status=status, code=error.name.lower().replace(" ", "_")
        )
    )


@bp.app_errorhandler(Exception)
def handle_unexpected(error: Exception) -> Response:
    log.exception("request %s: unexpected error", getattr(g, "request_id", ""))
    return render(GatewayError())

"""Render every error, ours or Flask's, as the OpenAI envelope with the request id; never HTML."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, Response, g
from werkzeug.exceptions import HTTPException

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


def render(error: GatewayError) -> Response:
    request_id = getattr(g, "request_id", "")
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

"""Render every error, ours or Flask's: the OpenAI envelope with the request id, or a page in the console.

Only the console (/ and /console/...) gets HTML: it registers its page renderer with
register_pages(). Anthropic clients (/api/v1/messages, or any request carrying anthropic-version) get
Anthropic's envelope; /api/* and every other path keep OpenAI's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    RequestTooLargeError,
)
from gateway.surfaces.anthropic_messages import errors as anthropic_errors

bp = Blueprint("errors", __name__)
log = logging.getLogger("gateway.errors")

_BY_STATUS = {404: NotFoundError, 405: MethodNotAllowedError, 413: RequestTooLargeError}
# (status, title, message, headers) -> the page, or None when the request is not the renderer's own.
Pages = Callable[[int, str, str, dict[str, str]], BaseResponse | None]
_TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed", 500: "Error"}


def register_pages(app: Flask, pages: Pages) -> None:
    """Let a part of the app (the console) answer errors of its own requests with its own pages."""
    app.extensions["gateway.error_pages"] = pages


def _page(
    status: int, title: str, message: str, headers: dict[str, str] | None = None
) -> BaseResponse | None:
    pages = current_app.extensions.get("gateway.error_pages")
    return pages(status, title, message, headers or {}) if pages else None


def anthropic_client() -> bool:
    """Tell whether the caller speaks Anthropic's API: it reads Anthropic's error envelope."""
    return request.path.startswith("/api/v1/messages") or "anthropic-version" in request.headers


def render(error: GatewayError) -> BaseResponse:
    page = _page(error.status, _TITLES.get(error.status, "Error"), error.message, error.headers)
    if page is not None:
        return page
    request_id = getattr(g, "request_id", "")
    if anthropic_client():
        body, headers = anthropic_errors.envelope(error, request_id), anthropic_errors.headers(error)
    else:
        body, headers = error.to_body(request_id), error.headers
    resp = Response(json.dumps(body), status=error.status, mimetype="application/json")
    for name, value in headers.items():
        resp.headers[name] = value
    return resp


@bp.app_errorhandler(GatewayError)
def handle_gateway_error(error: GatewayError) -> BaseResponse:
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
def handle_http_exception(error: HTTPException) -> BaseResponse:
    status = error.code or 500
    page = _page(status, error.name, error.description or error.name)
    if page is not None:
        return page
    kind = _BY_STATUS.get(status)
    if kind is not None:
        return render(kind())
    return render(
        InvalidRequestError(
            error.description or error.name, status=status, code=error.name.lower().replace(" ", "_")
        )
    )


@bp.app_errorhandler(Exception)
def handle_unexpected(error: Exception) -> BaseResponse:
    log.exception("request %s: unexpected error", getattr(g, "request_id", ""))
    return render(GatewayError())

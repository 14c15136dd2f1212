"""Anthropic's error envelope: {"type": "error", "error": {"type", "message"}, "request_id"}.

The types follow docs.claude.com/en/api/errors; the anthropic SDK picks its exception class from
the HTTP status alone (AuthenticationError 401, PermissionDeniedError 403, NotFoundError 404,
RateLimitError 429, OverloadedError 529 …), so the status stays the gateway's.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import (
    GatewayError,
    InsufficientQuotaError,
    RateLimitError,
    UpstreamAuthError,
    UpstreamError,
)

BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",  # the gateway's "try again later", which Anthropic says with 529
    504: "timeout_error",
    529: "overloaded_error",
}
# Types that say more than the status does; an upstream Anthropic error keeps its own.
SPECIFIC = frozenset(BY_STATUS.values()) - {"invalid_request_error", "api_error"}


def error_type(status: int, exc: GatewayError | None = None) -> str:
    """Return the Anthropic error type for a status and, where it says more, the error itself."""
    if isinstance(exc, InsufficientQuotaError):
        # The caller's gateway balance ran dry: Anthropic's word for that is billing, not a rate limit.
        return "billing_error"
    if exc is not None and exc.type in SPECIFIC:
        return exc.type
    if status in BY_STATUS:
        return BY_STATUS[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def envelope(exc: GatewayError, request_id: str) -> dict[str, Any]:
    """Return the error body a Messages client reads, with the request id."""
    return {
        "type": "error",
        "error": {"type": error_type(exc.status, exc), "message": exc.message},
        "request_id": request_id,
    }


def should_retry(exc: GatewayError) -> bool:
    """Tell whether the same request may succeed if sent again soon, for the x-should-retry header.

    The anthropic SDKs retry 408, 409, 429 and 5xx by status unless x-should-retry says otherwise,
    and Claude Code retries ten times over three minutes: a refusal that no retry can change (a bad
    key, an unknown model, an empty balance, a bug of ours, the provider refusing the gateway's own
    credentials) must say false. Rate limits, timeouts and the upstream's own failures may pass.
    """
    if exc.headers.get("x-should-retry") == "false":
        return False
    if isinstance(exc, RateLimitError):
        return True  # its retry-after says when
    if isinstance(exc, UpstreamAuthError):
        return False  # the operator must fix the provider's key first
    if isinstance(exc, UpstreamError):
        return exc.status >= 500 or exc.status in (408, 429)
    return exc.status == 503  # the gateway's database or every channel is down for now


def headers(exc: GatewayError) -> dict[str, str]:
    """Return the error's headers for a Messages client: its own, and x-should-retry when final."""
    out = dict(exc.headers)
    if not should_retry(exc):
        out["x-should-retry"] = "false"
    return out

"""Every error the gateway raises: each GatewayError fixes an HTTP status, an OpenAI error type and a code.

GatewayError (500 server_error)
├── InvalidRequestError (400 invalid_request_error)
│   ├── UnsupportedMediaTypeError (415)
│   ├── RequestTooLargeError (413)
│   ├── NotFoundError (404 not_found) ── ModelNotFoundError (404 model_not_found)
│   ├── MethodNotAllowedError (405)
│   ├── DuplicateRequestError (409 duplicate_request_id)
│   ├── EmailTakenError (409 email_taken)
│   └── NameTakenError (409 name_taken)
├── AuthenticationError (401 invalid_api_key) ── SignInError (401 invalid_credentials)
├── PermissionDeniedError (403 permission_denied)
├── InsufficientQuotaError (429 insufficient_quota, not retryable) ── BudgetExceededError (budget_exceeded)
├── RateLimitError (429 rate_limit_exceeded) ── SignInThrottledError (429 too_many_attempts)
├── ServiceUnavailableError (503)
└── UpstreamError (502 upstream_error)
    ├── UpstreamStatusError (the upstream's own 4xx/5xx)
    ├── UpstreamAuthError (502: the gateway's provider credentials failed)
    ├── UpstreamConnectionError (502 upstream_connection_error)
    ├── UpstreamTimeoutError (504 upstream_timeout)
    └── UpstreamProtocolError (502 bad_upstream_response)

ConfigError (a ValueError, not a GatewayError): the configuration cannot be used; the gateway does
not start. No error class lives anywhere else.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class _Default(Enum):
    DEFAULT = "default"


DEFAULT = _Default.DEFAULT  # "keep the class's code", as opposed to an explicit None


class GatewayError(Exception):
    """Base of every error the gateway answers with; rendered once by the errors blueprint."""

    status = 500
    type = "server_error"
    code: str | None = "internal_error"
    default_message = "The gateway had an error while processing your request."

    def __init__(
        self,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None | _Default = DEFAULT,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.param = param
        if code is not DEFAULT:
            self.code = code  # None is a real answer: the upstream gave no code
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.headers = dict(headers or {})

    def to_error(self) -> dict[str, Any]:
        """Return the inner OpenAI error object."""
        return {"message": self.message, "type": self.type, "param": self.param, "code": self.code}

    def to_body(self, request_id: str) -> dict[str, Any]:
        """Return the OpenAI error envelope with the request id."""
        return {"error": self.to_error(), "request_id": request_id}


class InvalidRequestError(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"
    default_message = "The request is not valid."


class UnsupportedMediaTypeError(InvalidRequestError):
    status = 415
    code = "unsupported_media_type"
    default_message = "The request body must be JSON (Content-Type: application/json)."


class RequestTooLargeError(InvalidRequestError):
    status = 413
    code = "request_too_large"
    default_message = "The request body is larger than this gateway accepts."


class NotFoundError(InvalidRequestError):
    status = 404
    code = "not_found"
    default_message = "There is nothing at this path."


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class MethodNotAllowedError(InvalidRequestError):
    status = 405
    code = "method_not_allowed"
    default_message = "This method is not allowed on this path."


class DuplicateRequestError(InvalidRequestError):
    status = 409
    code = "duplicate_request_id"
    default_message = "This X-Request-Id was already used; send a new one or none."


class EmailTakenError(InvalidRequestError):
    status = 409
    code = "email_taken"
    default_message = "A user with this email already exists."


class NameTakenError(InvalidRequestError):
    status = 409
    code = "name_taken"
    default_message = "This name is already in use."


class AuthenticationError(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"
    default_message = "Incorrect API key provided."


class SignInError(AuthenticationError):
    code = "invalid_credentials"
    default_message = "Wrong email or password."


class PermissionDeniedError(GatewayError):
    status = 403
    type = "invalid_request_error"
    code = "permission_denied"
    default_message = "This API key may not do that."


class InsufficientQuotaError(GatewayError):
    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"
    default_message = "You exceeded your current quota, please check your balance and key limits."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # Without this header the openai SDKs retry every 429 (docs/wire-formats.md#openai-sdk-retries).
        self.headers.setdefault("x-should-retry", "false")


class BudgetExceededError(InsufficientQuotaError):
    """A periodic budget (the key's, the user's or the team's) is used up until its period resets."""

    code = "budget_exceeded"
    default_message = "A budget is used up for this period."

    def __init__(self, message: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # Seconds until the period resets. x-should-retry stays false: an SDK's few quick retries
        # cannot outwait a day, and a client that reads retry-after knows when to come back.
        self.headers["retry-after"] = str(retry_after)


class RateLimitError(GatewayError):
    """429 with OpenAI's rate-limit type ("requests" or "tokens"); the openai SDKs retry it."""

    status = 429
    type = "requests"
    code = "rate_limit_exceeded"
    default_message = "Rate limit reached; try again later."


class SignInThrottledError(RateLimitError):
    type = "invalid_request_error"
    code = "too_many_attempts"
    default_message = "Too many sign-in attempts for this account; try again later."


class ServiceUnavailableError(GatewayError):
    status = 503
    code = "service_unavailable"
    default_message = "The gateway cannot serve requests right now; try again later."


class UpstreamError(GatewayError):
    status = 502
    code = "upstream_error"
    default_message = "The upstream provider failed to answer."


class UpstreamStatusError(UpstreamError):
    """The upstream answered with an error status; status, type and message are the upstream's."""


class UpstreamAuthError(UpstreamError):
    code = "upstream_auth_failed"


class UpstreamConnectionError(UpstreamError):
    code = "upstream_connection_error"


class UpstreamTimeoutError(UpstreamError):
    status = 504
    code = "upstream_timeout"
    default_message = "The upstream provider did not answer in time."


class UpstreamProtocolError(UpstreamError):
    code = "bad_upstream_response"
    default_message = "The upstream provider sent an answer the gateway could not read."


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""

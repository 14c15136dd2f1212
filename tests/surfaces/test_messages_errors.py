"""Anthropic's error envelope: golden cases, and the anthropic SDK's exception class for each."""

from __future__ import annotations

import json

import anthropic
import pytest

from gateway.errors import InsufficientQuotaError, UpstreamStatusError
from gateway.surfaces.anthropic_messages.errors import envelope, error_type, headers
from tests.surfaces import messages_golden as golden
from tests.surfaces import messages_sdk as sdk

CASES = golden.cases(".exception.json")
REQUEST_ID = "req_test0001"
# What the SDK raises for each status the gateway answers with (anthropic/_error_classes.py).
SDK_CLASSES = {
    400: anthropic.BadRequestError,
    401: anthropic.AuthenticationError,
    403: anthropic.PermissionDeniedError,
    404: anthropic.NotFoundError,
    413: anthropic.ContentTooLargeError,
    429: anthropic.RateLimitError,
    500: anthropic.InternalServerError,
    502: anthropic.InternalServerError,
    503: anthropic.ServiceUnavailableError,
    504: anthropic.GatewayTimeoutError,
    529: anthropic.OverloadedError,
}


def exception_of(case: str):
    return golden.exception(golden.load(golden.path(case, ".exception.json")))


@pytest.mark.parametrize("case", CASES)
def test_envelope_matches_golden_file(case):
    exc = exception_of(case)
    got = {"status": exc.status, "headers": headers(exc), "body": envelope(exc, REQUEST_ID)}
    golden.check(golden.path(case, ".envelope.json"), golden.as_json(got))


@pytest.mark.parametrize("case", CASES)
def test_sdk_raises_its_own_class_with_our_body(case):
    expected = golden.load(golden.path(case, ".envelope.json"))
    exc = sdk.raised(expected["status"], json.dumps(expected["body"]).encode())
    assert isinstance(exc, SDK_CLASSES[expected["status"]])
    assert exc.status_code == expected["status"]
    assert exc.body == expected["body"]
    assert exc.type == expected["body"]["error"]["type"]


def test_a_quota_error_is_billing_though_its_status_is_429():
    assert error_type(429, InsufficientQuotaError()) == "billing_error"
    assert error_type(429) == "rate_limit_error"


def test_an_upstream_anthropic_type_survives():
    overloaded = UpstreamStatusError("x", status=503, type="overloaded_error")
    assert error_type(503, overloaded) == "overloaded_error"
    invalid = UpstreamStatusError("x", status=400, type="invalid_request_error")
    assert error_type(400, invalid) == "invalid_request_error"


@pytest.mark.parametrize(
    "status, kind", [(405, "invalid_request_error"), (415, "invalid_request_error"), (507, "api_error")]
)
def test_unlisted_statuses_fall_back_by_class(status, kind):
    assert error_type(status) == kind

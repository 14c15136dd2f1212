"""The OpenAI-compatible API under /api/v1: chat completions and the model list."""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Blueprint, Response, g, request

from gateway.blueprints import services
from gateway.blueprints.auth import authenticate
from gateway.errors import InvalidRequestError, PermissionDeniedError, UnsupportedMediaTypeError
from gateway.relay import Call

bp = Blueprint("routing", __name__, url_prefix="/api/v1")

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def read_json_body() -> tuple[bytes, dict[str, Any]]:
    """Return the raw body and its JSON object, or raise a 4xx that says what is wrong."""
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"The request body must be JSON sent as 'Content-Type: application/json', not '{mimetype[:100]}'."
        )
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH, this raises a 413
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise InvalidRequestError("The request body is not valid UTF-8.") from None
    except (ValueError, RecursionError):
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. Send a JSON object."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    return raw, body


def _positive_int(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidRequestError(f"'{name}' must be a positive integer.", param=name)


def validate_chat(body: dict[str, Any]) -> None:
    """Check the fields the gateway itself reads; the rest goes upstream untouched."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("'model' is required: a string such as 'mock:echo'.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequestError("'messages' must be a non-empty array of messages.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequestError(
                f"messages[{i}] must be an object with a string 'role'.", param=f"messages[{i}]"
            )
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise InvalidRequestError("'stream' must be true or false.", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequestError("'stream_options' must be an object.", param="stream_options")
    _positive_int(body, "max_tokens")
    _positive_int(body, "max_completion_tokens")


@bp.post("/chat/completions")
def create_chat_completion() -> Response:
    started = time.monotonic()
    svc = services()
    principal = authenticate()
    raw, body = read_json_body()
    validate_chat(body)
    target = svc.catalog.resolve(body["model"])
    if not principal.may_use(target.public_id):
        raise PermissionDeniedError(
            f"This API key may not use the model `{target.public_id}`.",
            param="model",
            code="model_not_allowed",
        )
    call = Call(
        request_id=g.request_id,
        principal=principal,
        target=target,
        body=body,
        raw_size=len(raw),
        stream=body.get("stream") is True,
        started=started,
    )
    hold = svc.relay.reserve(call, len(raw), raw.count(b'"image_url"'))
    if not call.stream:
        return Response(svc.relay.complete(call, hold), mimetype="application/json")
    return Response(svc.relay.open_stream(call, hold), mimetype="text/event-stream", headers=STREAM_HEADERS)


@bp.get("/models")
def list_models() -> dict[str, Any]:
    principal = authenticate()
    data = [
        {"id": t.public_id, "object": "model", "created": 0, "owned_by": t.provider.name}
        for t in services().catalog.targets.values()
        if principal.may_use(t.public_id)
    ]
    return {"object": "list", "data": data}

"""The OpenAI-compatible API under /api/v1: chat and legacy completions, embeddings and models."""

from __future__ import annotations

import base64
import json
import re
import struct
import time
from typing import Any

from flask import Blueprint, Response, g, request

from gateway.accounts import Principal
from gateway.blueprints import services
from gateway.blueprints.auth import authenticate
from gateway.call import Call
from gateway.catalog import Target
from gateway.errors import (
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS

bp = Blueprint("routing", __name__, url_prefix="/api/v1")

OVERHEAD_HEADER = "X-Gateway-Overhead-Ms"
MODEL_HEADER = "X-Gateway-Model"  # the provider:model that answered: a fallback's when one did
ATTEMPTS_HEADER = "X-Gateway-Attempts"  # upstream tries it took, over channels and fallbacks
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Deeper JSON parses, but re-encoding it for the upstream a few stack frames further down then hits
# Python's recursion limit (a 500 at ~977 levels); no OpenAI body nests anywhere near this deep.
MAX_JSON_DEPTH = 128
_TOO_DEEP = f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels."
# The hold multiplies max_tokens by a price: 10**30 tokens overflowed the BIGINT micro-units (a 500).
# 2**31 - 1 tokens for each of at most 128 choices (n; OpenAI's own limit) stays inside BIGINT at any
# price below ~30 million USD per million tokens.
MAX_COUNT = 2**31 - 1
MAX_CHOICES = 128
# A JSON escape of a UTF-16 surrogate: in strict UTF-8, only these can leave a lone one in a string.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def read_json_body() -> tuple[bytes, dict[str, Any]]:
    """Return the raw body and its JSON object, or raise a 4xx that says what is wrong."""
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"The request body must be JSON sent as 'Content-Type: application/json', not '{mimetype[:100]}'."
        )
    raw = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH, this raises a 413
    # Without a Content-Length (chunked), werkzeug stops reading at the limit and returns the body
    # silently cut short; one more byte from the server's stream tells a larger body apart.
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise RequestTooLargeError()
    try:
        # Strict UTF-8 (RFC 8259 §8.1): json.loads(bytes) would also take UTF-16/32 and, through
        # "surrogatepass", encoded surrogates, which then fail as a 500 when the body goes upstream.
        body = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InvalidRequestError("The request body is not valid UTF-8.") from None
    except RecursionError:
        raise InvalidRequestError(_TOO_DEEP) from None
    except ValueError:
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. Send a JSON object."
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    _check_depth(body)
    if _SURROGATE_ESCAPE.search(raw):
        try:
            # A lone surrogate ("\\ud800") parses, then fails as UTF-8 when the body goes upstream.
            json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise InvalidRequestError(
                "The JSON body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not text."
            ) from None
    return raw, body


def _check_depth(body: dict[str, Any]) -> None:
    """Raise a 400 when the parsed body nests deeper than MAX_JSON_DEPTH (a walk of containers only)."""
    level: list[Any] = [body]
    for _depth in range(MAX_JSON_DEPTH):
        level = [
            v
            for node in level
            for v in (node.values() if isinstance(node, dict) else node)
            if isinstance(v, (dict, list))
        ]
        if not level:
            return
    raise InvalidRequestError(_TOO_DEEP)


def _positive_int(body: dict[str, Any], name: str, limit: int = MAX_COUNT) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise InvalidRequestError(f"'{name}' must be a positive integer up to {limit}.", param=name)


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
    _positive_int(body, "n", MAX_CHOICES)  # the hold covers n answers


def validate_model(body: dict[str, Any]) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("'model' is required: a string such as 'mock:echo'.", param="model")


def validate_completion(body: dict[str, Any]) -> None:
    """Check a legacy completions body: a prompt, and the fields the gateway reads."""
    validate_model(body)
    prompt = body.get("prompt")
    if not isinstance(prompt, str | list) or (isinstance(prompt, list) and not prompt):
        raise InvalidRequestError("'prompt' must be a string or a non-empty array.", param="prompt")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise InvalidRequestError("'stream' must be true or false.", param="stream")
    _positive_int(body, "max_tokens")
    _positive_int(body, "max_completion_tokens")  # not a legacy field, but the hold reads it
    _positive_int(body, "n", MAX_CHOICES)


def validate_embeddings(body: dict[str, Any]) -> None:
    """Check an embeddings body: input is a string, strings, token ids or arrays of token ids."""
    validate_model(body)
    value = body.get("input")
    items = [value] if isinstance(value, str) else value
    valid = isinstance(items, list) and 0 < len(items) <= 2048
    if valid and not all(isinstance(i, str) for i in items):
        ints = [x for i in items for x in (i if isinstance(i, list) else [i])]
        valid = all(isinstance(x, int) and not isinstance(x, bool) for x in ints) and all(
            not isinstance(i, list) or i for i in items
        )
    if not valid:
        raise InvalidRequestError(
            "'input' must be a string, or an array of 1 to 2048 strings or token arrays.", param="input"
        )
    if body.get("encoding_format") not in (None, "float", "base64"):
        raise InvalidRequestError("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    _positive_int(body, "dimensions")


def _target(principal: Principal, model: str, operation: str) -> Target:
    target = services().catalog.resolve(model)
    if not principal.may_use(target.public_id):
        raise PermissionDeniedError(
            f"This API key may not use the model `{target.public_id}`.",
            param="model",
            code="model_not_allowed",
        )
    if not target.adapter.supports(operation):
        what = {CHAT: "chat completions", COMPLETIONS: "legacy completions", EMBEDDINGS: "embeddings"}
        raise InvalidRequestError(
            f"The model `{target.public_id}` does not offer {what[operation]}.",
            param="model",
            code="unsupported_operation",
        )
    return target


def _relay(operation: str, validate: Any) -> tuple[Call, bytes | Response]:
    """Authenticate, validate, route, hold the worst case and relay: the walk every POST shares."""
    started = time.monotonic()
    svc = services()
    principal = authenticate()
    raw, body = read_json_body()
    validate(body)
    call = Call(
        request_id=g.request_id,
        principal=principal,
        target=_target(principal, body["model"], operation),
        body=body,
        raw_size=len(raw),
        stream=body.get("stream") is True and operation != EMBEDDINGS,
        started=started,
        operation=operation,
    )
    hold = svc.relay.reserve(call, len(raw), raw.count(b'"image_url"'))
    if not call.stream:
        return call, svc.relay.complete(call, hold)
    stream = svc.relay.open_stream(call, hold)
    return call, Response(stream, mimetype="text/event-stream", headers=STREAM_HEADERS)


def _respond(call: Call, answer: bytes | Response) -> Response:
    """Wrap the answer, and say how long the gateway itself took so far, upstream time excluded.

    Users can check our overhead on their own traffic. For a stream it covers the work before the
    first byte (authentication, validation, the reservation); the usage log has the rest.
    """
    resp = answer if isinstance(answer, Response) else Response(answer, mimetype="application/json")
    overhead = call.timing.overhead_s(time.monotonic() - call.started)
    resp.headers[OVERHEAD_HEADER] = f"{overhead * 1000:.2f}"
    resp.headers[MODEL_HEADER] = call.answered.public_id
    resp.headers[ATTEMPTS_HEADER] = str(call.trace.attempts)
    return resp


@bp.post("/chat/completions")
def create_chat_completion() -> Response:
    return _respond(*_relay(CHAT, validate_chat))


@bp.post("/completions")
def create_completion() -> Response:
    return _respond(*_relay(COMPLETIONS, validate_completion))


@bp.post("/embeddings")
def create_embedding() -> Response:
    call, answer = _relay(EMBEDDINGS, validate_embeddings)
    assert isinstance(answer, bytes)
    if call.body.get("encoding_format") == "base64":
        answer = _as_base64(answer)
    return _respond(call, answer)


def _as_base64(answer: bytes) -> bytes:
    """Encode float vectors as OpenAI's base64 of little-endian float32 (protocol.md §9.2)."""
    data = json.loads(answer)
    for item in data.get("data") or ():
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, list):
            item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return json.dumps(data, separators=(",", ":")).encode()


def _model_object(model_id: str, target: Target) -> dict[str, Any]:
    """Return OpenAI's model object, with prices and context length where the catalog knows them."""
    out: dict[str, Any] = {"id": model_id, "object": "model", "created": 0, "owned_by": target.provider.name}
    if model_id != target.public_id:
        out["alias_for"] = target.public_id
    model = target.model
    if model.priced:
        prices = {"input": str(model.input_price), "output": str(model.output_price)}
        if model.cached_input_price is not None:
            prices["cached_input"] = str(model.cached_input_price)
        if model.cache_write_price is not None:
            prices["cache_write"] = str(model.cache_write_price)
        out["pricing"] = dict(prices, unit="USD per million tokens")
    if model.context_length:
        out["context_length"] = model.context_length
    if model.max_output_tokens:
        out["max_output_tokens"] = model.max_output_tokens
    return out


@bp.get("/models")
def list_models() -> dict[str, Any]:
    principal = authenticate()
    catalog = services().catalog
    data = [_model_object(t.public_id, t) for t in catalog.targets.values() if principal.may_use(t.public_id)]
    for alias, public_id in catalog.aliases.items():
        if principal.may_use(public_id):
            data.append(_model_object(alias, catalog.targets[public_id]))
    return {"object": "list", "data": data}


# path, not string: openai-python ≥ 3 sends a '/' in an id as %2F, v1 sent it raw (protocol.md §9.1);
# the WSGI server decodes both to '/' before routing.
@bp.get("/models/<path:model_id>")
def retrieve_model(model_id: str) -> dict[str, Any]:
    principal = authenticate()
    catalog = services().catalog
    try:
        target = catalog.resolve(model_id)
    except ModelNotFoundError:
        target = None
    if target is None or not principal.may_use(target.public_id):
        raise ModelNotFoundError(
            f"The model `{model_id[:200]}` does not exist or you do not have access to it.", param="model"
        )
    return _model_object(model_id, target)

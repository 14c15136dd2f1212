"""The walk every API request shares: the key, the body, the route, the hold, the relay, the headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Response, g, request

from gateway.blueprints.auth import authenticate
from gateway.blueprints.body import read_json_body
from gateway.blueprints.services import services
from gateway.errors import InvalidRequestError, PermissionDeniedError
from gateway.providers.base import CHAT, COMPLETIONS, EMBEDDINGS
from gateway.relay.call import Call
from gateway.routing.catalog import Target
from gateway.store.principals import Principal
from gateway.surfaces.openai_chat import ParsedRequest

OVERHEAD_HEADER = "X-Gateway-Overhead-Ms"
MODEL_HEADER = "X-Gateway-Model"  # the provider:model that answered: a fallback's when one did
ATTEMPTS_HEADER = "X-Gateway-Attempts"  # upstream tries it took, over channels and fallbacks
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def route(principal: Principal, model: str, operation: str) -> Target:
    """Resolve the model for this key and operation, or raise 404, 403 or 400."""
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


def serve(parse: Callable[[dict[str, Any]], ParsedRequest]) -> tuple[Call, bytes | Response]:
    """Authenticate, parse, route, hold the worst case and relay: the walk every API POST shares.

    parse() turns the client's body into the canonical form (each surface has its own); the model
    is routed as the canonical body names it.
    """
    svc = services()
    started = svc.clock.monotonic()
    principal = authenticate()
    raw, body = read_json_body()
    parsed = parse(body)
    call = Call(
        request_id=g.request_id,
        principal=principal,
        target=route(principal, parsed.body["model"], parsed.operation),
        request=parsed,
        raw_size=len(raw),
        started=started,
    )
    return call, relay(call)


def relay(call: Call) -> bytes | Response:
    """Hold the call's worst case and relay it: the whole answer's body, or the streamed Response."""
    svc = services()
    held = svc.relay.reserve(call)
    if not call.stream:
        return svc.relay.complete(call, held)
    stream = svc.relay.open_stream(call, held)
    _bound_writes(svc.settings.write_timeout)
    return Response(stream, mimetype="text/event-stream", headers=STREAM_HEADERS)


def _bound_writes(seconds: float) -> None:
    """Cut a client that reads nothing for this long: its thread and hold would otherwise wait forever.

    gunicorn writes the stream with a blocking sendall; with a timeout on the socket it raises,
    gunicorn closes the body, and the stream settles what was relayed. gunicorn makes the socket
    blocking again (no timeout) before the next request on the connection.
    """
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(seconds)


def respond(call: Call, answer: bytes | Response) -> Response:
    """Wrap the answer, and say how long the gateway itself took so far, upstream time excluded.

    Users can check our overhead on their own traffic. For a stream it covers the work before the
    first byte (authentication, validation, the reservation); the usage log has the rest.
    """
    resp = answer if isinstance(answer, Response) else Response(answer, mimetype="application/json")
    overhead = call.timing.overhead_s(services().clock.monotonic() - call.started)
    resp.headers[OVERHEAD_HEADER] = f"{overhead * 1000:.2f}"
    resp.headers[MODEL_HEADER] = call.answered.public_id
    resp.headers[ATTEMPTS_HEADER] = str(call.trace.attempts)
    return resp

"""Anthropic's Messages API under /api/v1, for Claude Code and the anthropic SDKs, and their HEAD /api probe.

A query string (Claude Code sends ?beta=true) is ignored. Errors are rendered in Anthropic's
envelope by the errors blueprint, which knows these paths.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, request

from gateway.blueprints.auth import authenticate
from gateway.blueprints.body import read_json_body
from gateway.blueprints.serve import MODEL_HEADER, respond, route, serve
from gateway.blueprints.services import services
from gateway.errors import InvalidRequestError
from gateway.providers.anthropic.native import forwarded_headers
from gateway.providers.base import CHAT
from gateway.relay.count import count_tokens
from gateway.surfaces.anthropic_messages import format as messages_format
from gateway.surfaces.openai_chat import ParsedRequest

bp = Blueprint("messages", __name__)
# Fields of a translated request that the gateway did not know and did not send upstream.
DROPPED_HEADER = "X-Gateway-Dropped-Fields"
ESTIMATED_HEADER = "X-Gateway-Estimated"


@bp.after_request
def _request_id_header(resp: Response) -> Response:
    # Anthropic names it request-id; the anthropic SDKs read it there (Message._request_id).
    resp.headers["request-id"] = g.get("request_id", "")
    return resp


def _parse(body: dict[str, Any]) -> ParsedRequest:
    return messages_format.parse(body, dict(request.headers))


@bp.post("/api/v1/messages")
def create_message() -> Response:
    call, answer = serve(_parse)
    resp = respond(call, answer)
    client = call.request.client
    translated = client is not None and not call.answered.adapter.supports(client.native_operation)
    if translated and isinstance(client, messages_format.MessagesFormat) and client.dropped:
        resp.headers[DROPPED_HEADER] = ",".join(client.dropped)
    return resp


@bp.post("/api/v1/messages/count_tokens")
def count_message_tokens() -> Response:
    """Count the input tokens of a Messages body; nothing is generated, held or billed."""
    principal = authenticate()
    _, body = read_json_body()
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model: is required and must be a string.", param="model")
    if not isinstance(body.get("messages"), list):
        raise InvalidRequestError("messages: is required and must be an array.", param="messages")
    target = route(principal, model, CHAT)
    svc = services()
    headers = forwarded_headers(dict(request.headers))
    count = count_tokens(svc.relay.upstream, svc.relay.failover, target, body, headers, g.request_id)
    resp = Response(count.body, mimetype="application/json")
    resp.headers[MODEL_HEADER] = target.public_id
    if count.estimated:
        resp.headers[ESTIMATED_HEADER] = "true"
    return resp


@bp.route("/api", methods=["HEAD"])
def probe() -> Response:
    """Answer Claude Code's reachability probe of its base URL."""
    return Response(status=200)

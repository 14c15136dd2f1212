"""OpenAI's Responses API under /api/v1, for Codex CLI, the Agents SDK and `client.responses`.

Any upstream serves it: natively where the provider has `responses = "native"`, else translated
through canonical chat. Stored responses (store.responses) carry previous_response_id across
upstreams; a response an upstream answered natively is continued on that same channel.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, g, request

from gateway.blueprints.auth import authenticate
from gateway.blueprints.body import read_json_body
from gateway.blueprints.messages import ESTIMATED_HEADER
from gateway.blueprints.serve import relay, respond, route
from gateway.blueprints.services import services
from gateway.errors import InvalidRequestError, NotFoundError
from gateway.providers.base import CHAT, COMPACT, INPUT_TOKENS, RESPONSES
from gateway.relay.call import Call
from gateway.relay.count import Count, count_tokens
from gateway.routing.catalog import Target
from gateway.store.principals import Principal
from gateway.store.responses import StoredResponse
from gateway.surfaces.responses import format as responses_format
from gateway.surfaces.responses.count import input_tokens_object
from gateway.surfaces.responses.items import normalise_input
from gateway.surfaces.responses.response import input_items

bp = Blueprint("responses", __name__)
log = logging.getLogger("gateway.responses")


@bp.post("/api/v1/responses")
def create_response() -> Response:
    svc = services()
    started = svc.clock.monotonic()
    principal = authenticate()
    raw, body = read_json_body()
    model = _model(body)
    previous = _previous(principal, body)
    response_id, created_at = f"resp_{uuid.uuid4().hex}", int(svc.clock.now().timestamp())
    target = route(principal, model, CHAT)
    history, pinned, native_body = _continuation(body, target, previous)
    kept_input = history + input_items(body, response_id)
    calls: list[Call] = []

    def keep(result: dict[str, Any], native: bool) -> None:
        channel = calls[0].trace.channel if native else ""
        try:
            svc.responses.save(principal.user_id, result, kept_input, channel)
        except Exception:  # the answer is already made and billed: a lost copy must not break it
            log.exception("request %s: the response could not be stored", g.request_id)

    stored = body.get("store") is not False
    parsed = responses_format.parse(
        body, history, native_body, response_id, created_at, keep if stored else None
    )
    call = Call(
        request_id=g.request_id,
        principal=principal,
        target=pinned or target,
        request=parsed,
        raw_size=len(raw),
        started=started,
    )
    calls.append(call)
    answer = relay(call)
    client = parsed.client
    if isinstance(answer, bytes) and isinstance(client, responses_format.ResponsesFormat):
        if call.answered.adapter.supports(RESPONSES):
            client.native_answer(json.loads(answer))
    return respond(call, answer)


@bp.post("/api/v1/responses/input_tokens")
def count_input_tokens() -> Response:
    """Count a Responses body's input tokens: the upstream's count where it has one, else an estimate."""
    svc = services()
    principal = authenticate()
    _, body = read_json_body()
    previous = _previous(principal, body)
    model = body.get("model")
    if model is None:  # OpenAI makes the model optional here; there is no upstream to ask
        history = previous.history() if previous is not None else []
        count = Count(json.dumps(input_tokens_object(body, history)).encode(), estimated=True)
    else:
        target = route(principal, _model(body), CHAT)
        history, pinned, native_body = _continuation(body, target, previous)
        count = count_tokens(
            svc.relay.upstream,
            svc.relay.failover,
            pinned or target,
            native_body,
            (),
            g.request_id,
            INPUT_TOKENS,
            lambda _: input_tokens_object(body, history),
        )
    resp = Response(count.body, mimetype="application/json")
    if count.estimated:
        resp.headers[ESTIMATED_HEADER] = "true"
    return resp


@bp.post("/api/v1/responses/compact")
def compact_response() -> Response:
    """Relay a compaction to an upstream that compacts natively; billed like any answer."""
    svc = services()
    started = svc.clock.monotonic()
    principal = authenticate()
    raw, body = read_json_body()
    model = _model(body)
    previous = _previous(principal, body)
    target = route(principal, model, CHAT)
    if not target.adapter.supports(COMPACT):
        raise InvalidRequestError(
            f"The model `{target.public_id}` does not offer remote compaction.",
            param="model",
            code="unsupported_operation",
        )
    history, pinned, native_body = _continuation(body, target, previous)
    parsed = responses_format.parse_compact(body, history, native_body)
    call = Call(g.request_id, principal, pinned or target, parsed, len(raw), started)
    return respond(call, relay(call))


@bp.get("/api/v1/responses/<response_id>")
def get_response(response_id: str) -> Response:
    stored = _stored(authenticate(), response_id)
    return Response(json.dumps(stored.response), mimetype="application/json")


@bp.delete("/api/v1/responses/<response_id>")
def delete_response(response_id: str) -> Response:
    principal = authenticate()
    if not services().responses.delete(principal.user_id, response_id):
        raise _not_found(response_id)
    deleted = {"id": response_id, "object": "response.deleted", "deleted": True}
    return Response(json.dumps(deleted), mimetype="application/json")


@bp.get("/api/v1/responses/<response_id>/input_items")
def list_input_items(response_id: str) -> Response:
    """List a stored response's input items (the history before it included), newest first by default."""
    stored = _stored(authenticate(), response_id)
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequestError("'order' must be 'asc' or 'desc'.", param="order")
    try:
        limit = int(request.args.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise InvalidRequestError("'limit' must be an integer from 1 to 100.", param="limit")
    items = stored.input_items if order == "asc" else stored.input_items[::-1]
    after = request.args.get("after")
    if after:
        ids = [item.get("id") for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    listing = {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(items) > limit,
    }
    return Response(json.dumps(listing), mimetype="application/json")


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("'model' is required and must be a string.", param="model")
    return model


def _continuation(
    body: dict[str, Any], target: Target, previous: StoredResponse | None
) -> tuple[list[dict[str, Any]], Target | None, dict[str, Any]]:
    """Return the history before the request, the target pinned to a native channel, the native body."""
    if previous is None:
        return [], None, body
    history = previous.history()
    pinned = _pinned(target, previous)
    return history, pinned, body if pinned is not None else _inline(body, history)


def _previous(principal: Principal, body: dict[str, Any]) -> StoredResponse | None:
    """Return the stored response the request continues, or raise 404; None when it names none."""
    previous_id = body.get("previous_response_id")
    if previous_id is None:
        return None
    if not isinstance(previous_id, str) or not previous_id:
        raise InvalidRequestError("'previous_response_id' must be a string.", param="previous_response_id")
    found = services().responses.find(principal.user_id, previous_id)
    if found is None:
        raise NotFoundError(
            f"Previous response with id '{previous_id}' not found.", param="previous_response_id"
        )
    return found


def _pinned(target: Target, previous: StoredResponse | None) -> Target | None:
    """The target narrowed to the channel that answered `previous` natively, when it is still there.

    That upstream holds the conversation itself, so the continuation goes there with its
    previous_response_id, without fallbacks; anywhere else it goes with the stored history inline.
    """
    if previous is None or not previous.channel or not target.adapter.supports(RESPONSES):
        return None
    for channel in target.channels:
        if channel.key == previous.channel:
            return replace(target, channels=(channel,), fallbacks=())
    return None


def _inline(body: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """The native body with the stored history as input instead of a previous_response_id.

    Item ids are ours, unknown to the upstream, which would look them up: they are left out.
    """
    earlier = [{k: v for k, v in item.items() if k != "id"} for item in history]
    inline = {k: v for k, v in body.items() if k != "previous_response_id"}
    inline["input"] = earlier + normalise_input(body.get("input"))
    return inline


def _stored(principal: Principal, response_id: str) -> StoredResponse:
    found = services().responses.find(principal.user_id, response_id)
    if found is None:
        raise _not_found(response_id)
    return found


def _not_found(response_id: str) -> NotFoundError:
    return NotFoundError(f"Response with id '{response_id}' not found.", param="response_id")

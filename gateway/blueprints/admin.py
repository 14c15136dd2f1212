"""The admin API under /api/admin: users, credit, keys and usage, as JSON, for admins only.

An admin is a caller with an API key whose user is_admin, or with the operator's admin token
(GATEWAY_ADMIN_TOKEN) as its Bearer credential. Errors use the same envelope as /api/v1.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway import clock
from gateway.blueprints.admin_fields import (
    BUDGET_FIELDS,
    ID,
    MAX_ID,
    amount_field,
    body_of,
    bool_field,
    budget_field,
    credit_body,
    datetime_field,
    id_field,
    limit_field,
    models_field,
    query_int,
    rate_limits,
    text_field,
    usage_filters,
)
from gateway.blueprints.auth import authenticate
from gateway.blueprints.services import services
from gateway.errors import InvalidRequestError, PermissionDeniedError
from gateway.store import billing, budgets, keys, logins, ratelimit, teams, usage, users
from gateway.store.records import Record

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


@bp.before_request
def require_admin() -> None:
    """Let in the admin token or an admin's API key; others get 401 (no valid key) or 403."""
    token = services().settings.admin_token
    scheme, _, secret = request.headers.get("Authorization", "").strip().partition(" ")
    # An empty admin token disables this path; compare_digest keeps the comparison's time flat.
    if token and scheme.lower() == "bearer" and hmac.compare_digest(secret.strip().encode(), token.encode()):
        return
    if not authenticate().is_admin:
        raise PermissionDeniedError("Only an admin's API key or the admin token may use the admin API.")


def _list(records: Sequence[Record], **extra: Any) -> dict[str, Any]:
    return {"object": "list", "data": [r.to_json() for r in records], **extra}


@bp.get("/users")
def list_users() -> dict[str, Any]:
    """List every user, oldest first."""
    with services().db.session_scope() as conn:
        return _list(users.list_users(conn))


@bp.post("/users")
def create_user() -> tuple[dict[str, Any], int]:
    """Create a user, optionally with an initial credit recorded in the ledger."""
    body = body_of("email", "is_admin", "unlimited", "credit_usd", "credit_micros", "note")
    email = body.get("email")
    if not isinstance(email, str):
        raise InvalidRequestError("'email' is required: a string such as ada@example.com.", param="email")
    is_admin, unlimited = bool_field(body, "is_admin"), bool_field(body, "unlimited")
    initial, name = amount_field(body, "credit_usd", "credit_micros")
    if initial is not None and initial < 0:
        raise InvalidRequestError(f"'{name}' must not be negative for a new user.", param=name)
    note = text_field(body, "note", 1000, "initial credit")
    with services().db.session_scope() as conn:
        user_id = users.register_user(conn, email, is_admin=is_admin, unlimited=unlimited)
        if initial:
            billing.credit(conn, user_id, initial, note, clock.utcnow())
        return users.get_user(conn, user_id).to_json(), 201


@bp.get(f"/users/<{ID}:user_id>")
def get_user(user_id: int) -> dict[str, Any]:
    """Return one user."""
    with services().db.session_scope() as conn:
        return users.get_user(conn, user_id).to_json()


@bp.post(f"/users/<{ID}:user_id>/credit")
def credit_user(user_id: int) -> dict[str, Any]:
    """Add credit to a user's balance, or debit it with a negative amount."""
    amount, name, note = credit_body()
    with services().db.session_scope() as conn:
        users.get_user(conn, user_id)
        try:
            billing.credit(conn, user_id, amount, note, clock.utcnow())
        except InvalidRequestError as exc:
            exc.param = name  # the debit is too large: point at the field that said so
            raise
        return {"amount_micros": amount, "note": note, "user": users.get_user(conn, user_id).to_json()}


@bp.post(f"/users/<{ID}:user_id>/signout")
def sign_out_user(user_id: int) -> dict[str, Any]:
    """Sign a user out of every console session, everywhere (a stolen cookie stops working)."""
    with services().db.session_scope() as conn:
        users.get_user(conn, user_id)
        logins.end_sessions(conn, user_id)
        return users.get_user(conn, user_id).to_json()


@bp.get("/keys")
def list_keys() -> dict[str, Any]:
    """List keys, all or one user's; never a full key."""
    user_id = query_int("user_id", 1, MAX_ID)
    with services().db.session_scope() as conn:
        return _list(keys.list_keys(conn, user_id=user_id))


@bp.post("/keys")
def create_key() -> Response:
    """Mint a key for a user; the response is the only place the full key ever appears."""
    body = body_of(
        "user_id", "team_id", "name", "limit_usd", "limit_micros", "expires_at", "models", *BUDGET_FIELDS
    )
    user_id = id_field(body.get("user_id"), "user_id")
    team_id = None if body.get("team_id") is None else id_field(body["team_id"], "team_id")
    budget = budget_field(body)
    name = text_field(body, "name", 200)
    limit, _ = limit_field(body)
    expires_at = datetime_field(body.get("expires_at"), "expires_at")
    models = models_field(body.get("models"))
    with services().db.session_scope() as conn:
        users.get_user(conn, user_id)
        if team_id is not None:
            teams.get_team_by_id(conn, team_id, clock.utcnow())
        key_id, minted = keys.create_key(
            conn,
            user_id,
            name=name,
            limit_micros=limit,
            expires_at=expires_at,
            allowed_models=models,
            team_id=team_id,
        )
        if budget is not None:
            budgets.set_budget(conn, "key", key_id, *budget)
        created = {**keys.get_key(conn, key_id).to_json(), "key": minted.secret}
    resp = jsonify(created)
    resp.status_code = 201
    resp.headers["Cache-Control"] = "no-store"  # the one response that carries a full key
    return resp


@bp.post(f"/keys/<{ID}:key_id>/revoke")
def revoke_key(key_id: int) -> dict[str, Any]:
    """Revoke a key (again is fine) and forget it in this process's key cache."""
    svc = services()
    with svc.db.session_scope() as conn:
        keys.get_key(conn, key_id)
        keys.revoke_key(conn, str(key_id))
        revoked = keys.get_key(conn, key_id).to_json()
    # Other processes forget it within half a second: revoke_key bumped the change counter.
    svc.key_cache.clear()
    return revoked


@bp.patch(f"/keys/<{ID}:key_id>")
def update_key(key_id: int) -> dict[str, Any]:
    """Change a key's name, limit, budget, disabled flag, expiry, allowed models or rate limits."""
    body = body_of(
        "name",
        "limit_usd",
        "limit_micros",
        "disabled",
        "expires_at",
        "models",
        *ratelimit.FIELDS,
        *BUDGET_FIELDS,
    )
    budget = budget_field(body)
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = text_field(body, "name", 200)
    if "limit_usd" in body or "limit_micros" in body:
        changes["limit_micros"], _ = limit_field(body)
    if "disabled" in body:
        changes["disabled"] = bool_field(body, "disabled")
    if "expires_at" in body:
        changes["expires_at"] = datetime_field(body["expires_at"], "expires_at")
    if "models" in body:
        changes["allowed_models"] = models_field(body["models"])
    svc = services()
    with svc.db.session_scope() as conn:
        keys.update_key(conn, key_id, **changes)
        ratelimit.set_limits(conn, "key", key_id, **rate_limits(body))
        if budget is not None:
            budgets.set_budget(conn, "key", key_id, *budget)
        updated = keys.get_key(conn, key_id).to_json()
    svc.key_cache.clear()  # cached principals carry the old expiry, model list and rate limits
    return updated


@bp.patch(f"/users/<{ID}:user_id>")
def update_user(user_id: int) -> dict[str, Any]:
    """Change a user's rate limits and periodic budget, which all of the user's keys share."""
    body = body_of(*ratelimit.FIELDS, *BUDGET_FIELDS)
    limits, budget = rate_limits(body), budget_field(body)
    svc = services()
    with svc.db.session_scope() as conn:
        users.get_user(conn, user_id)
        ratelimit.set_limits(conn, "user", user_id, **limits)
        if budget is not None:
            budgets.set_budget(conn, "user", user_id, *budget)
        updated = users.get_user(conn, user_id).to_json()
    svc.key_cache.clear()
    return updated


@bp.get("/usage")
def list_usage() -> dict[str, Any]:
    """List usage rows, newest first, filtered by user, key, model and time."""
    filters = usage_filters()
    limit = query_int("limit", 1, usage.MAX_LIMIT) or usage.DEFAULT_LIMIT
    with services().db.session_scope() as conn:
        return _list(usage.list_usage(conn, limit=limit, **filters))


@bp.get("/usage/summary")
def summarize_usage() -> dict[str, Any]:
    """Sum requests, tokens and cost per user, key, model or UTC day."""
    group_by = request.args.get("group_by", "")
    if group_by not in usage.GROUPS:
        raise InvalidRequestError(f"'group_by' must be one of {', '.join(usage.GROUPS)}.", param="group_by")
    filters = usage_filters()
    with services().db.session_scope() as conn:
        return _list(usage.summarize(conn, group_by, **filters), group_by=group_by)

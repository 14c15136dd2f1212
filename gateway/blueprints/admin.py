"""The admin API under /api/admin: users, credit, keys and usage, as JSON, for admins only.

An admin is a caller with an API key whose user is_admin, or with the operator's admin token
(GATEWAY_ADMIN_TOKEN) as its Bearer credential. Errors use the same envelope as /api/v1.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from gateway import clock
from gateway.blueprints.auth import authenticate
from gateway.blueprints.body import read_json_body
from gateway.blueprints.services import services
from gateway.errors import InvalidRequestError, PermissionDeniedError
from gateway.store import billing, keys, logins, ratelimit, usage, users
from gateway.store.records import Record

bp = Blueprint("admin", __name__, url_prefix="/api/admin")

MAX_ID = 2**63 - 1  # BIGINT: a larger id cannot exist, and would overflow the driver
ID = f"int(min=1, max={MAX_ID})"


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


def _body(*allowed: str) -> dict[str, Any]:
    _, body = read_json_body()
    for name in body:
        if name not in allowed:
            raise InvalidRequestError(
                f"Unknown parameter '{name[:100]}'; this endpoint accepts {', '.join(allowed)}.", param=name
            )
    return body


def _bool(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise InvalidRequestError(f"'{name}' must be true or false.", param=name)
    return value


def _id(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise InvalidRequestError(f"'{name}' must be a positive integer id.", param=name)
    return value


def _text(body: dict[str, Any], name: str, max_length: int, default: str = "") -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or len(value) > max_length:
        raise InvalidRequestError(
            f"'{name}' must be a string of at most {max_length} characters.", param=name
        )
    return value


def _amount(body: dict[str, Any], usd_name: str, micros_name: str) -> tuple[int | None, str]:
    """Return the micro-USD amount given in either field (None when neither is), and the field's name."""
    if usd_name in body and micros_name in body:
        raise InvalidRequestError(f"Give '{usd_name}' or '{micros_name}', not both.", param=micros_name)
    if micros_name in body:
        value = body[micros_name]
        if value is None:
            return None, micros_name
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > billing.MAX_AMOUNT_MICROS:
            raise InvalidRequestError(f"'{micros_name}' must be an integer of micro-USD.", param=micros_name)
        return value, micros_name
    if usd_name in body:
        value = body[usd_name]
        if value is None:
            return None, usd_name
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidRequestError(f"'{usd_name}' must be a number of USD.", param=usd_name)
        try:
            # str() of a JSON float is its shortest repr, so 0.1 stays exactly 0.1 USD.
            return billing.micros_from_usd(str(value)), usd_name
        except ValueError as exc:
            raise InvalidRequestError(f"'{usd_name}': {exc}.", param=usd_name) from None
    return None, micros_name


def _datetime(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{name}' must be an ISO 8601 date or time, or null.", param=name)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequestError(
            f"'{name}' must be an ISO 8601 date or time such as 2027-01-31 or 2027-01-31T12:00:00Z.",
            param=name,
        ) from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _models(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(m, str) and m and "," not in m and len(m) <= 255 for m in value
    ):
        raise InvalidRequestError(
            "'models' must be a list of provider:model ids such as [\"mock:echo\"], or null.", param="models"
        )
    return value


def _limit_micros(body: dict[str, Any]) -> tuple[int | None, str]:
    limit, name = _amount(body, "limit_usd", "limit_micros")
    if limit is not None and limit < 0:
        raise InvalidRequestError(f"'{name}' must not be negative.", param=name)
    return limit, name


def _rate_limits(body: dict[str, Any]) -> dict[str, int | None]:
    """Read the rate limits given in the body: each a positive integer, or null for no limit."""
    found: dict[str, int | None] = {}
    for name in ratelimit.FIELDS:
        if name in body:
            value, high = body[name], 2**62 if name == "tpm_limit" else 2**31 - 1
            wrong = isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high
            if value is not None and wrong:
                raise InvalidRequestError(f"'{name}' must be a positive integer or null.", param=name)
            found[name] = value
    return found


def _query_int(name: str, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    # Length first: int() of thousands of digits is slow, then refused by Python itself.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and low <= int(raw) <= high):
        raise InvalidRequestError(f"'{name}' must be an integer from {low} to {high}.", param=name)
    return int(raw)


def _usage_filters() -> dict[str, Any]:
    return {
        "user_id": _query_int("user_id", 1, MAX_ID),
        "key_id": _query_int("key_id", 1, MAX_ID),
        "model": request.args.get("model") or None,
        "since": _datetime(request.args.get("since"), "since"),
    }


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
    body = _body("email", "is_admin", "unlimited", "credit_usd", "credit_micros", "note")
    email = body.get("email")
    if not isinstance(email, str):
        raise InvalidRequestError("'email' is required: a string such as ada@example.com.", param="email")
    is_admin, unlimited = _bool(body, "is_admin"), _bool(body, "unlimited")
    initial, name = _amount(body, "credit_usd", "credit_micros")
    if initial is not None and initial < 0:
        raise InvalidRequestError(f"'{name}' must not be negative for a new user.", param=name)
    note = _text(body, "note", 1000, "initial credit")
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
    body = _body("amount_usd", "amount_micros", "note")
    amount, name = _amount(body, "amount_usd", "amount_micros")
    if not amount:
        raise InvalidRequestError(
            "Give a non-zero 'amount_usd' or 'amount_micros' (negative to debit).", param=name
        )
    note = _text(body, "note", 1000)
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
    user_id = _query_int("user_id", 1, MAX_ID)
    with services().db.session_scope() as conn:
        return _list(keys.list_keys(conn, user_id=user_id))


@bp.post("/keys")
def create_key() -> Response:
    """Mint a key for a user; the response is the only place the full key ever appears."""
    body = _body("user_id", "name", "limit_usd", "limit_micros", "expires_at", "models")
    user_id = _id(body.get("user_id"), "user_id")
    name = _text(body, "name", 200)
    limit, _ = _limit_micros(body)
    expires_at = _datetime(body.get("expires_at"), "expires_at")
    models = _models(body.get("models"))
    with services().db.session_scope() as conn:
        users.get_user(conn, user_id)
        key_id, minted = keys.create_key(
            conn, user_id, name=name, limit_micros=limit, expires_at=expires_at, allowed_models=models
        )
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
    """Change a key's name, limit, disabled flag, expiry, allowed models or rate limits."""
    body = _body("name", "limit_usd", "limit_micros", "disabled", "expires_at", "models", *ratelimit.FIELDS)
    changes: dict[str, Any] = {}
    if "name" in body:
        changes["name"] = _text(body, "name", 200)
    if "limit_usd" in body or "limit_micros" in body:
        changes["limit_micros"], _ = _limit_micros(body)
    if "disabled" in body:
        changes["disabled"] = _bool(body, "disabled")
    if "expires_at" in body:
        changes["expires_at"] = _datetime(body["expires_at"], "expires_at")
    if "models" in body:
        changes["allowed_models"] = _models(body["models"])
    svc = services()
    with svc.db.session_scope() as conn:
        keys.update_key(conn, key_id, **changes)
        ratelimit.set_limits(conn, "key", key_id, **_rate_limits(body))
        updated = keys.get_key(conn, key_id).to_json()
    svc.key_cache.clear()  # cached principals carry the old expiry, model list and rate limits
    return updated


@bp.patch(f"/users/<{ID}:user_id>")
def update_user(user_id: int) -> dict[str, Any]:
    """Change a user's rate limits, which all of the user's keys share."""
    limits = _rate_limits(_body(*ratelimit.FIELDS))
    svc = services()
    with svc.db.session_scope() as conn:
        users.get_user(conn, user_id)
        ratelimit.set_limits(conn, "user", user_id, **limits)
        updated = users.get_user(conn, user_id).to_json()
    svc.key_cache.clear()
    return updated


@bp.get("/usage")
def list_usage() -> dict[str, Any]:
    """List usage rows, newest first, filtered by user, key, model and time."""
    filters = _usage_filters()
    limit = _query_int("limit", 1, usage.MAX_LIMIT) or usage.DEFAULT_LIMIT
    with services().db.session_scope() as conn:
        return _list(usage.list_usage(conn, limit=limit, **filters))


@bp.get("/usage/summary")
def summarize_usage() -> dict[str, Any]:
    """Sum requests, tokens and cost per user, key, model or UTC day."""
    group_by = request.args.get("group_by", "")
    if group_by not in usage.GROUPS:
        raise InvalidRequestError(f"'group_by' must be one of {', '.join(usage.GROUPS)}.", param="group_by")
    filters = _usage_filters()
    with services().db.session_scope() as conn:
        return _list(usage.summarize(conn, group_by, **filters), group_by=group_by)

"""Who is calling the API: the key in the request, checked against the store through the key cache."""

from __future__ import annotations

from flask import request

from gateway.blueprints.services import services
from gateway.errors import AuthenticationError
from gateway.store import keys
from gateway.store.principals import Principal, find_principal


def authenticate() -> Principal:
    """Return the principal behind the request's key, or raise invalid_api_key.

    The key comes as `Authorization: Bearer sk-…` (OpenAI's clients, Claude Code's auth token) or as
    `x-api-key: sk-…` (the anthropic SDKs' default).
    """
    header = request.headers.get("Authorization", "")
    # RFC 9110 lets a tab separate the scheme from the credentials as well as spaces (RWS); without
    # this, "Bearer<TAB>sk-..." with a right key was refused.
    scheme, _, secret = header.replace("\t", " ").strip().partition(" ")
    secret = secret.strip()
    if not header and request.headers.get("x-api-key"):
        scheme, secret = "bearer", request.headers["x-api-key"].strip()
    elif not header:
        raise AuthenticationError("You didn't provide an API key. Send it as 'Authorization: Bearer sk-…'.")
    if scheme.lower() != "bearer" or not keys.looks_like_key(secret):
        raise AuthenticationError(
            "Incorrect API key provided. Send 'Authorization: Bearer sk-…' with a key from the console."
        )
    svc = services()
    key_hash = keys.hash_key(secret)

    def load() -> Principal | None:
        with svc.db.session_scope() as conn:
            return find_principal(conn, key_hash)

    principal = svc.key_cache.get(key_hash, load)
    if principal is None:
        raise AuthenticationError("Incorrect API key provided, or the key was revoked.")
    if principal.expires_at is not None and principal.expires_at <= svc.clock.now():
        raise AuthenticationError("This API key has expired.")
    return principal

"""Who is calling: the Bearer API key check for /api/v1, and the console's password sign-in."""

from __future__ import annotations

import functools
import math
from datetime import timedelta

from flask import request
from werkzeug.security import check_password_hash, generate_password_hash

from gateway import keys, logins
from gateway.accounts import Principal, find_principal, utcnow
from gateway.blueprints import services
from gateway.errors import AuthenticationError, GatewayError

SIGNIN_WINDOW = timedelta(minutes=15)
# Sign-in attempts per window, counted in the store across every worker and host. An account is
# locked for the address guessing at it, not for its owner elsewhere; guesses spread over many
# addresses, or over many accounts from one address, meet the wider limits.
MAX_SIGNIN_ATTEMPTS = 5  # per account and client address
MAX_ACCOUNT_ATTEMPTS = 50  # per account, from every address
MAX_ADDRESS_ATTEMPTS = 30  # per client address, over every account
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200  # a bound on the work one request can ask of the hash


class SignInError(GatewayError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_credentials"
    default_message = "Wrong email or password."


class SignInThrottledError(GatewayError):
    status = 429
    type = "invalid_request_error"
    code = "too_many_attempts"
    default_message = "Too many sign-in attempts for this account; try again later."


def authenticate() -> Principal:
    """Return the principal behind the request's Bearer key, or raise invalid_api_key."""
    header = request.headers.get("Authorization", "")
    # RFC 9110 lets a tab separate the scheme from the credentials as well as spaces (RWS); without
    # this, "Bearer<TAB>sk-..." with a right key was refused.
    scheme, _, secret = header.replace("\t", " ").strip().partition(" ")
    secret = secret.strip()
    if not header:
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
    if principal.expires_at is not None and principal.expires_at <= utcnow():
        raise AuthenticationError("This API key has expired.")
    return principal


def hash_password(password: str) -> str:
    """Hash a password with werkzeug's default (scrypt), salted."""
    return generate_password_hash(password)


@functools.cache
def _decoy_hash() -> str:
    # Checked when the email is unknown, so a wrong email costs as much time as a wrong password.
    return generate_password_hash("decoy password, never matches anything")


def check_password(email: str, password: str, address: str) -> tuple[int, str]:
    """Return (user id, password hash) for an email and password, counting the attempt against the
    account, the client's address, and the pair.

    The hash is the one the password matched, for the session to be bound to (see sign_in).

    :raises SignInThrottledError: one of the three had too many attempts in the current window.
    :raises SignInError: the email is unknown, has no password, or the password is wrong.
    """
    svc = services()
    now = utcnow()
    pair, account, origin = (
        logins.subject(email, address),
        logins.subject(email),
        logins.subject("@", address),
    )
    # Narrowest first, and a refusal stops the counting: one address adds at most
    # MAX_SIGNIN_ATTEMPTS to an account's counter, so locking its owner out takes many addresses.
    limits = [
        (pair, MAX_SIGNIN_ATTEMPTS, "this account"),
        (origin, MAX_ADDRESS_ATTEMPTS, "your address"),
        (account, MAX_ACCOUNT_ATTEMPTS, "this account"),
    ]
    for key, limit, what in limits:
        with svc.db.session_scope() as conn:
            attempts = logins.note_attempt(conn, key, SIGNIN_WINDOW, now)
        if attempts.count > limit:
            wait = max(1, math.ceil((attempts.window_ends_at - now).total_seconds()))
            raise SignInThrottledError(
                f"Too many sign-in attempts for {what}; try again in {math.ceil(wait / 60)} minute(s).",
                headers={"Retry-After": str(wait)},
            )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise SignInError()  # no password this long was ever accepted: skip the costly hash
    with svc.db.session_scope() as conn:
        found = logins.find_password_hash(conn, email)
    if not check_password_hash(found[1] if found else _decoy_hash(), password) or found is None:
        raise SignInError()
    with svc.db.session_scope() as conn:
        # The address's counter stays: signing in to one's own account must not reset it for guesses.
        logins.clear_attempts(conn, pair, account)
    return found

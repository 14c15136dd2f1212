"""Check a console password under the sign-in limits: per account and address, per address, per account."""

from __future__ import annotations

import math

from gateway.blueprints.services import services
from gateway.errors import SignInError, SignInThrottledError
from gateway.store import logins


def check_password(email: str, password: str, address: str) -> tuple[int, str]:
    """Return (user id, password hash) for an email and password, counting the attempt against the
    account, the client's address, and the pair.

    The hash is the one the password matched, for the session to be bound to (see base.sign_in).

    :raises SignInThrottledError: one of the three had too many attempts in the current window.
    :raises SignInError: the email is unknown, has no password, or the password is wrong.
    """
    svc = services()
    now = svc.clock.now()
    pair, account, origin = (
        logins.subject(email, address),
        logins.subject(email),
        logins.subject("@", address),
    )
    # Narrowest first, and a refusal stops the counting: one address adds at most
    # MAX_SIGNIN_ATTEMPTS to an account's counter, so locking its owner out takes many addresses.
    limits = [
        (pair, logins.MAX_SIGNIN_ATTEMPTS, "this account"),
        (origin, logins.MAX_ADDRESS_ATTEMPTS, "your address"),
        (account, logins.MAX_ACCOUNT_ATTEMPTS, "this account"),
    ]
    for key, limit, what in limits:
        with svc.db.session_scope() as conn:
            attempts = logins.note_attempt(conn, key, logins.SIGNIN_WINDOW, now)
        if attempts.count > limit:
            wait = max(1, math.ceil((attempts.window_ends_at - now).total_seconds()))
            raise SignInThrottledError(
                f"Too many sign-in attempts for {what}; try again in {math.ceil(wait / 60)} minute(s).",
                headers={"Retry-After": str(wait)},
            )
    with svc.db.session_scope() as conn:
        found = logins.find_password_hash(conn, email)
    if not logins.password_matches(found[1] if found else None, password) or found is None:
        raise SignInError()
    with svc.db.session_scope() as conn:
        # The address's counter stays: signing in to one's own account must not reset it for guesses.
        logins.clear_attempts(conn, pair, account)
    return found

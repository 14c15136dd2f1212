"""Console logins: the password policy and hashes, and sign-in attempt counters shared by every worker.

Passwords are hashed with werkzeug's default (scrypt, salted). An attempt is counted before the
password is checked, in its own committed statement, so parallel guesses on many workers cannot
slip past the limit between a check and a count.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from gateway.clock import as_utc
from gateway.store.tables import login_attempts, users
from gateway.store.users import find_user

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 200  # a bound on the work one request can ask of the hash
SIGNIN_WINDOW = timedelta(minutes=15)
# Sign-in attempts per window, counted in the store across every worker and host. An account is
# locked for the address guessing at it, not for its owner elsewhere; guesses spread over many
# addresses, or over many accounts from one address, meet the wider limits.
MAX_SIGNIN_ATTEMPTS = 5  # per account and client address
MAX_ACCOUNT_ATTEMPTS = 50  # per account, from every address
MAX_ADDRESS_ATTEMPTS = 30  # per client address, over every account


def password_problem(password: str, email: str) -> str | None:
    """Say what is wrong with a new password, or None when the policy accepts it."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        return f"use {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
    if password.strip().lower() == email.strip().lower():
        return "the password must not be the email address"
    return None


def hash_password(password: str) -> str:
    """Hash a password with werkzeug's default (scrypt), salted."""
    return generate_password_hash(password)


@functools.cache
def _decoy_hash() -> str:
    return generate_password_hash("decoy password, never matches anything")


def password_matches(password_hash: str | None, password: str) -> bool:
    """Check a password against a stored hash; with none, check a decoy, so an unknown email costs as
    much time as a wrong password."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False  # no password this long was ever accepted: skip the costly hash
    return check_password_hash(password_hash or _decoy_hash(), password) and password_hash is not None


@dataclass(frozen=True)
class Attempts:
    """How many sign-in attempts an account had in its current window, and when the window ends."""

    count: int
    window_ends_at: datetime


def subject(*parts: str) -> str:
    """Return a counter's key: a hash of its parts (an email, an address), since people type
    passwords into email fields."""
    text = "\x00".join(part.strip().lower() for part in parts)
    return hashlib.sha256(("signin:" + text).encode("utf-8")).hexdigest()


def note_attempt(conn: Connection, key: str, window: timedelta, now: datetime) -> Attempts:
    """Count one sign-in attempt against a subject() key in its window (a new one once it ended)."""
    expired = login_attempts.c.window_started_at < now - window
    bump = (
        update(login_attempts)
        .where(login_attempts.c.subject == key)
        .values(
            # Both CASEs read the row as it was before this UPDATE, on SQLite and PostgreSQL alike.
            attempts=case((expired, 1), else_=login_attempts.c.attempts + 1),
            window_started_at=case((expired, now), else_=login_attempts.c.window_started_at),
        )
        .returning(login_attempts.c.attempts, login_attempts.c.window_started_at)
    )
    row = conn.execute(bump).first()
    if row is None:
        conn.execute(delete(login_attempts).where(expired))  # forget old windows as new ones open
        try:
            # A savepoint: another worker may insert the same subject first (unique violation).
            with conn.begin_nested():
                conn.execute(insert(login_attempts).values(subject=key, attempts=1, window_started_at=now))
            return Attempts(1, now + window)
        except IntegrityError:
            row = conn.execute(bump).one()
    return Attempts(row.attempts, as_utc(row.window_started_at) + window)


def clear_attempts(conn: Connection, *keys: str) -> None:
    """Forget counters after a successful sign-in."""
    conn.execute(delete(login_attempts).where(login_attempts.c.subject.in_(keys)))


def find_password_hash(conn: Connection, email: str) -> tuple[int, str] | None:
    """Return (user id, password hash) for an email, or None when there is no user or no password."""
    row = find_user(conn, email)
    if row is None or not row.password_hash:
        return None
    return row.id, row.password_hash


def set_password_hash(conn: Connection, user_id: int, password_hash: str) -> None:
    """Store a user's new password hash."""
    conn.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


def session_stamp(password_hash: str) -> str:
    """Return a short fingerprint of a password hash, for a console session to carry.

    A session is good only while its stamp matches the user's current password hash, so setting a
    new password (in the console or with `gateway users password`) signs out every session made before.
    The cookie is signed but readable; a digest of a salted scrypt hash tells its reader nothing.
    """
    return hashlib.sha256(("session:" + password_hash).encode("utf-8")).hexdigest()[:16]


def find_session_stamp(conn: Connection, user_id: int) -> tuple[str, int] | None:
    """Return the session_stamp() of a user's current password and the user's session generation,
    or None when there is no such user or no password."""
    row = conn.execute(
        select(users.c.password_hash, users.c.session_generation).where(users.c.id == user_id)
    ).first()
    if row is None or not row.password_hash:
        return None
    return session_stamp(row.password_hash), row.session_generation


def session_generation(conn: Connection, user_id: int) -> int:
    """Return the user's current session generation (what a new session records)."""
    return conn.execute(select(users.c.session_generation).where(users.c.id == user_id)).scalar() or 0


def end_sessions(conn: Connection, user_id: int) -> bool:
    """Sign the user out of every console session, on every host: a copied cookie stops working.

    Return False when there is no such user.
    """
    query = update(users).where(users.c.id == user_id)
    return conn.execute(query.values(session_generation=users.c.session_generation + 1)).rowcount == 1


def console_user_ids(conn: Connection) -> set[int]:
    """Return the ids of users who can sign in to the console (they have a password)."""
    return set(conn.execute(select(users.c.id).where(users.c.password_hash.is_not(None))).scalars())

"""Mint, hash and check API keys; only the hash and a display prefix are ever stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "sk-"
PREFIX_LENGTH = 10  # "sk-" and 7 characters: enough to tell keys apart on a screen
_SHAPE = re.compile(r"sk-[A-Za-z0-9_-]{40,200}")


@dataclass(frozen=True)
class MintedKey:
    secret: str  # shown once, never stored
    hash: str
    prefix: str


def hash_key(secret: str) -> str:
    """Return the hex SHA-256 of a key, the only form in which it is stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def mint() -> MintedKey:
    """Create a new random key: sk- and 48 URL-safe characters (288 bits)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(36)
    return MintedKey(secret=secret, hash=hash_key(secret), prefix=secret[:PREFIX_LENGTH])


def looks_like_key(secret: str) -> bool:
    """Tell whether a string has the shape of one of our keys, before any lookup."""
    return _SHAPE.fullmatch(secret) is not None  # match() would let "$" accept a trailing newline


def matches(secret: str, stored_hash: str) -> bool:
    """Compare a presented key with a stored hash in constant time."""
    return hmac.compare_digest(hash_key(secret), stored_hash)

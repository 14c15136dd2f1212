"""API keys: their shape, their hash, and the checks made before and after a lookup."""

from __future__ import annotations

import hashlib
import re

import pytest

from gateway.store import keys


def test_minted_key_is_sk_and_at_least_40_url_safe_characters():
    minted = keys.mint()
    assert re.fullmatch(r"sk-[A-Za-z0-9_-]{40,}", minted.secret)
    assert len(minted.secret) == len("sk-") + 48


def test_minted_keys_differ():
    assert len({keys.mint().secret for _ in range(100)}) == 100


def test_only_the_hash_and_a_short_prefix_are_kept_for_storage():
    minted = keys.mint()
    assert minted.hash == hashlib.sha256(minted.secret.encode()).hexdigest()
    assert minted.prefix == minted.secret[:10] and minted.prefix.startswith("sk-")
    assert minted.secret not in minted.hash + minted.prefix


def test_hash_is_hex_sha256():
    assert keys.hash_key("sk-abc") == hashlib.sha256(b"sk-abc").hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", keys.hash_key("sk-é"))


def test_matches_accepts_the_key_and_refuses_any_other():
    minted = keys.mint()
    assert keys.matches(minted.secret, minted.hash)
    other = "y" if minted.secret.endswith("x") else "x"  # a secret may end in "x" (1 in 64)
    assert not keys.matches(minted.secret[:-1] + other, minted.hash)
    assert not keys.matches(minted.secret, keys.mint().hash)
    assert not keys.matches("", minted.hash)


def test_matches_refuses_a_stored_hash_of_another_length_without_error():
    # hmac.compare_digest takes time independent of where the strings differ; it must also
    # tolerate a hash that is not 64 characters (a damaged row), answering False.
    minted = keys.mint()
    assert not keys.matches(minted.secret, minted.hash[:32])
    assert not keys.matches(minted.secret, "")


def test_minted_key_looks_like_a_key():
    assert keys.looks_like_key(keys.mint().secret)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sk-",
        "sk-" + "a" * 39,
        "sk-" + "a" * 201,
        "pk-" + "a" * 48,
        "SK-" + "a" * 48,
        "sk-" + "a" * 47 + "=",
        "sk-" + "a" * 47 + "+",
        "sk-" + "a" * 47 + " ",
        "sk-" + "a" * 48 + "\n",
        " sk-" + "a" * 48,
        "sk-" + "a" * 40 + "é",
    ],
)
def test_strings_of_another_shape_are_not_keys(text):
    assert not keys.looks_like_key(text)


@pytest.mark.parametrize("text", ["sk-" + "a" * 40, "sk-" + "A-_9" * 50])
def test_keys_of_the_allowed_lengths_look_like_keys(text):
    assert keys.looks_like_key(text)

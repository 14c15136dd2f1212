"""The key cache: valid keys stay through floods of unknown ones; a change to keys reaches every cache."""

from __future__ import annotations

from gateway.store.key_cache import KeyCache
from gateway.store.principals import Principal

PRINCIPAL = Principal(
    key_id=1,
    key_prefix="sk-abcdefg",
    user_id=1,
    user_email="a@b.c",
    is_admin=False,
    allowed_models=None,
    expires_at=None,
)


class Loads:
    """A load() that counts its calls and answers from a fixed set of valid hashes."""

    def __init__(self, valid: set[str]) -> None:
        self.valid = valid
        self.calls = 0

    def __call__(self, key_hash: str):
        def load():
            self.calls += 1
            return PRINCIPAL if key_hash in self.valid else None

        return load


def cache(**options):
    return KeyCache(60.0, **options)


def test_a_flood_of_unknown_keys_never_evicts_a_valid_one():
    keys = cache()
    loads = Loads({"valid"})
    assert keys.get("valid", loads("valid")) is PRINCIPAL
    for n in range(25_000):  # well past the old 10,000-entry clear-all
        assert keys.get(f"random-{n}", loads(f"random-{n}")) is None
    before = loads.calls
    assert keys.get("valid", loads("valid")) is PRINCIPAL
    assert loads.calls == before  # served from the cache: no store lookup


def test_failed_lookups_are_bounded_and_least_recently_used_go_first():
    keys = cache(max_missing=3)
    loads = Loads(set())
    for name in ("a", "b", "c"):
        keys.get(name, loads(name))
    keys.get("a", loads("a"))  # a is used again: b is now the least recently used
    keys.get("d", loads("d"))
    assert len(keys._missing) == 3
    calls = loads.calls
    keys.get("a", loads("a"))
    keys.get("c", loads("c"))
    assert loads.calls == calls  # a and c still cached
    keys.get("b", loads("b"))
    assert loads.calls == calls + 1  # b was evicted


def test_valid_keys_are_bounded_too():
    keys = cache(max_entries=2)
    loads = Loads({"a", "b", "c"})
    for name in ("a", "b", "c"):
        keys.get(name, loads(name))
    assert len(keys._found) == 2


def test_a_moved_change_counter_empties_the_cache_within_check_every():
    now = [0.0]

    class Clock:
        def monotonic(self):
            return now[0]

    counter = [1]
    reads = []

    def version():
        reads.append(now[0])
        return counter[0]

    keys = cache(clock=Clock(), version=version, check_every=0.5)
    loads = Loads({"valid"})
    keys.get("valid", loads("valid"))
    for t in (0.1, 0.2, 0.3, 0.4):
        now[0] = t
        keys.get("valid", loads("valid"))
    assert loads.calls == 1 and reads == [0.0]  # no query per request within check_every
    counter[0] = 2  # another process revoked a key
    now[0] = 0.5
    keys.get("valid", loads("valid"))
    assert loads.calls == 2 and reads == [0.0, 0.5]


def test_a_load_that_began_before_a_change_is_not_kept():
    counter = [1]
    keys = cache(version=lambda: counter[0], check_every=0.0)
    loads = Loads({"valid"})

    def slow_load():
        counter[0] = 2  # the key changes while its old row is being read
        keys.get("other", loads("other"))  # another thread sees the change and clears the cache
        return PRINCIPAL

    keys.get("valid", slow_load)
    calls = loads.calls
    keys.get("valid", loads("valid"))
    assert loads.calls == calls + 1

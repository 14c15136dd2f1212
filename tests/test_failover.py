"""Failover: the weighted order of channels, cooldowns after failures, fallbacks, and what is retryable."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.config.settings import load_settings
from gateway.errors import (
    InvalidRequestError,
    UpstreamAuthError,
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from gateway.routing.catalog import Catalog, Target
from gateway.routing.failover import MAX_COOLDOWN, PULL_EVERY, Failover, retry_after, retryable


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def catalog(cooldown: float = 30, weights: tuple[int, ...] = (1, 1)) -> Catalog:
    rows = [{"name": f"c{i}", "weight": w} for i, w in enumerate(weights)]
    providers = {
        "up": {
            "base_url": "http://up.test",
            "cooldown": cooldown,
            "channels": rows,
            "models": {"m": {"fallbacks": ["alt:a", "solo:s"]}},
        },
        "alt": {
            "base_url": "http://alt.test",
            "channels": [{"name": "x"}, {"name": "y"}],
            "models": {"a": {}},
        },
        "solo": {"base_url": "http://solo.test", "models": {"s": {}}},
    }
    return Catalog(load_settings(test_config={"providers": providers}, env={}))


def keys(plan) -> list[str]:
    return [channel.key for _, channel in plan]


def candidates(target: Target) -> list[Target]:
    return [target, *target.fallbacks]


def down(status: int = 503, **headers: str) -> UpstreamStatusError:
    return UpstreamStatusError("boom", status=status, headers=headers)


def test_plan_lists_the_targets_channels_then_each_fallbacks():
    target = catalog().resolve("up:m")
    plan = Failover(clock=FakeClock()).plan(candidates(target))
    assert sorted(keys(plan)[:2]) == ["up/c0", "up/c1"]
    assert sorted(keys(plan)[2:4]) == ["alt/x", "alt/y"]
    assert keys(plan)[4:] == ["solo/default"]
    assert [t.public_id for t, _ in plan] == ["up:m", "up:m", "alt:a", "alt:a", "solo:s"]


def test_channels_come_first_in_proportion_to_their_weight():
    target = catalog(weights=(3, 1)).resolve("up:m")
    failover = Failover(clock=FakeClock(), rng=random.Random(20240601).random)
    firsts = Counter(keys(failover.plan([target]))[0] for _ in range(4000))
    assert set(firsts) == {"up/c0", "up/c1"}
    assert 0.70 <= firsts["up/c0"] / 4000 <= 0.80


def test_a_failed_channel_sits_out_until_its_cooldown_ends():
    clock = FakeClock()
    target = catalog(cooldown=30).resolve("up:m")
    failover = Failover(clock=clock, rng=random.Random(1).random)
    c0 = next(c for c in target.channels if c.key == "up/c0")
    failover.failed(target, c0, down())
    assert keys(failover.plan([target])) == ["up/c1"]
    clock.advance(29.9)
    assert keys(failover.plan([target])) == ["up/c1"]
    clock.advance(0.1)
    assert sorted(keys(failover.plan([target]))) == ["up/c0", "up/c1"]


def test_a_cooling_channel_is_left_out_but_the_fallbacks_stay():
    target = catalog().resolve("up:m")
    failover = Failover(clock=FakeClock())
    for channel in target.channels:
        failover.failed(target, channel, down())
    assert sorted(keys(failover.plan(candidates(target)))) == ["alt/x", "alt/y", "solo/default"]


def test_cooldown_zero_never_benches_a_channel():
    target = catalog(cooldown=0).resolve("up:m")
    failover = Failover(clock=FakeClock())
    for channel in target.channels:
        failover.failed(target, channel, down(429, **{"retry-after": "60"}))
    assert sorted(keys(failover.plan([target]))) == ["up/c0", "up/c1"]


def test_when_every_channel_cools_the_one_that_recovers_first_is_tried_once():
    clock = FakeClock()
    target = catalog(cooldown=30).resolve("up:m")
    failover = Failover(clock=clock)
    c0, c1 = target.channels
    failover.failed(target, c0, down())
    clock.advance(10)
    failover.failed(target, c1, down())
    assert keys(failover.plan([target])) == ["up/c0"]
    clock.advance(5)
    failover.failed(target, c0, down())  # c0 now recovers 5 s after c1
    plan = failover.plan([target])
    assert keys(plan) == ["up/c1"]
    assert plan[0][0] is target


def test_when_every_channel_of_every_candidate_cools_one_attempt_remains():
    clock = FakeClock()
    target = catalog(cooldown=30).resolve("up:m")
    failover = Failover(clock=clock)
    everything = [(t, c) for t in candidates(target) for c in t.channels]
    for t, c in everything:
        failover.failed(t, c, down())
        clock.advance(1)
    assert keys(failover.plan(candidates(target))) == ["up/c0"]


@pytest.mark.parametrize(
    "exc",
    [
        UpstreamConnectionError(),
        UpstreamTimeoutError(),
        UpstreamAuthError(),
        UpstreamProtocolError(),
        *(down(status) for status in (500, 502, 503, 429, 408)),
    ],
    ids=lambda exc: f"{type(exc).__name__}-{exc.status}",
)
def test_failures_another_channel_may_fix_are_retryable(exc):
    assert retryable(exc) is True


@pytest.mark.parametrize(
    "exc",
    [down(400), down(404), down(422), InvalidRequestError()],
    ids=lambda exc: f"{type(exc).__name__}-{exc.status}",
)
def test_failures_of_the_request_itself_are_not_retryable(exc):
    assert retryable(exc) is False


@pytest.mark.parametrize(
    "headers, seconds",
    [({"retry-after": "12"}, 12.0), ({"retry-after": "1.5"}, 1.5), ({}, 0.0), ({"retry-after": "-3"}, 0.0)],
)
def test_retry_after_reads_seconds(headers, seconds):
    assert retry_after(down(429, **headers)) == seconds


def test_retry_after_ignores_an_http_date():
    assert retry_after(down(429, **{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0


@pytest.mark.parametrize(
    "headers, seconds",
    [
        ({"retry-after-ms": "90000"}, 90.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250.5"}, 0.2505),
        # OpenAI sends both; the milliseconds are the finer of the two, so they win.
        ({"retry-after-ms": "1500", "retry-after": "7"}, 1.5),
        ({"retry-after": "7", "retry-after-ms": "1500"}, 1.5),
        # An unreadable retry-after-ms falls back to retry-after.
        ({"retry-after-ms": "soon", "retry-after": "7"}, 7.0),
    ],
)
def test_retry_after_reads_milliseconds_first(headers, seconds):
    assert retry_after(down(429, **headers)) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "headers, seconds",
    [
        ({"retry-after": "inf"}, 0.0),
        ({"retry-after": "Infinity"}, 0.0),
        ({"retry-after": "nan"}, 0.0),
        ({"retry-after-ms": "inf"}, 0.0),
        ({"retry-after-ms": "1e400"}, 0.0),  # float() reads it as inf
        # A non-finite retry-after-ms is skipped, not taken as 0: the retry-after still counts.
        ({"retry-after-ms": "nan", "retry-after": "5"}, 5.0),
        ({"retry-after-ms": "inf", "retry-after": "5"}, 5.0),
    ],
)
def test_retry_after_ignores_non_finite_values(headers, seconds):
    assert retry_after(down(429, **headers)) == seconds


@pytest.mark.parametrize(
    "headers, benched",
    [
        ({"retry-after": "120"}, 120),  # longer than the cooldown: the upstream's word wins
        ({"retry-after": "2"}, 30),  # shorter: the cooldown stands
        ({"retry-after": "86400"}, MAX_COOLDOWN),
        ({"retry-after-ms": "90000"}, 90),
        ({"retry-after": "inf"}, 30),
    ],
    ids=["longer", "shorter", "capped", "milliseconds", "infinite"],
)
def test_a_429_benches_its_channel_for_the_longer_of_cooldown_and_retry_after(headers, benched):
    clock = FakeClock()
    target = catalog(cooldown=30).resolve("up:m")
    failover = Failover(clock=clock)
    c0 = target.channels[0]
    failover.failed(target, c0, down(429, **headers))
    clock.advance(benched - 0.1)
    assert c0.key not in keys(failover.plan([target]))
    clock.advance(0.1)
    assert c0.key in keys(failover.plan([target]))


class Board:
    """A CooldownBoard in memory: what two workers' Failovers would share through the store."""

    def __init__(self, clock: FakeClock, broken: bool = False) -> None:
        self.clock = clock
        self.until: dict[str, float] = {}
        self.reads = 0
        self.broken = broken

    def post(self, channel: str, seconds: float) -> None:
        if self.broken:
            raise OSError("store down")
        self.until[channel] = max(self.until.get(channel, 0.0), self.clock() + seconds)

    def read(self) -> dict[str, float]:
        self.reads += 1
        if self.broken:
            raise OSError("store down")
        return {k: u - self.clock() for k, u in self.until.items() if u > self.clock()}


def test_one_workers_failure_benches_the_channel_for_another_within_the_pull_interval():
    clock = FakeClock()
    board = Board(clock)
    target = catalog(cooldown=30).resolve("up:m")
    first, second = (Failover(clock=clock, rng=lambda: 0.5, board=board) for _ in range(2))
    assert keys(second.plan([target]))[0] == "up/c0"  # has read the empty board
    first.failed(target, target.channels[0], down())
    assert keys(second.plan([target]))[0] == "up/c0", "reads at most every PULL_EVERY seconds"
    clock.advance(PULL_EVERY)
    assert keys(second.plan([target])) == ["up/c1"]
    clock.advance(30 - PULL_EVERY)
    assert keys(second.plan([target])) == ["up/c0", "up/c1"], "the shared cooldown ends on time"


def test_the_board_is_read_once_per_interval_however_many_requests_plan():
    clock = FakeClock()
    board = Board(clock)
    failover = Failover(clock=clock, board=board)
    target = catalog().resolve("up:m")
    for _ in range(50):
        failover.plan([target])
    assert board.reads == 1


def test_a_broken_board_fails_open_and_the_worker_still_benches_locally():
    clock = FakeClock()
    failover = Failover(clock=clock, rng=lambda: 0.5, board=Board(clock, broken=True))
    target = catalog(cooldown=30).resolve("up:m")
    assert keys(failover.plan([target]))[0] == "up/c0"
    failover.failed(target, target.channels[0], down())
    clock.advance(PULL_EVERY)
    assert keys(failover.plan([target])) == ["up/c1"]

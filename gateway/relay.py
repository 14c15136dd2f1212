"""One call upstream, whole or streamed, between a reservation and exactly one settlement."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from gateway import billing, failover, pricing, ratelimit
from gateway.accounts import utcnow
from gateway.billing import Hold, UsageRecord
from gateway.call import Call, outcome_of
from gateway.catalog import Channel, Target
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    ServiceUnavailableError,
    UpstreamError,
)
from gateway.failover import Failover
from gateway.providers.base import EMBEDDINGS, Usage
from gateway.streaming import StreamRelay
from gateway.upstream import Upstream

log = logging.getLogger("gateway.relay")
access_log = logging.getLogger("gateway.access")

T = TypeVar("T")
IMAGE_TOKENS = 2000  # an image part can cost far more tokens than the bytes of its URL


class Observer(Protocol):
    """Told of every settled request, streams opening and closing, and failed tries (e.g. metrics)."""

    def settled(self, call: Call, record: UsageRecord) -> None: ...

    def streams_changed(self, delta: int) -> None: ...

    def attempt_failed(self, call: Call, channel: str, exc: UpstreamError) -> None: ...


class Relay:
    """Reserve, call, settle: the money never moves outside these three steps."""

    def __init__(
        self, settings: Settings, db: Database, upstream: Upstream, observers: tuple[Observer, ...] = ()
    ) -> None:
        self.settings = settings
        self.db = db
        self.upstream = upstream
        self.observers = observers
        self.failover = Failover()
        self._sweep_lock = threading.Lock()
        self._next_sweep = 0.0

    def reserve(self, call: Call, prompt_bytes: int, images: int) -> Hold:
        """Hold the call's worst-case cost, within the rate limits; raises a 429 when it cannot."""
        prompt_tokens = prompt_bytes + images * IMAGE_TOKENS  # a token is never shorter than a byte
        # A fallback may answer instead, at its own price: hold the dearest of them.
        worst = [(t, call.max_output(self.settings.default_max_tokens, t)) for t in call.candidates()]
        amount = max(pricing.worst_case_micros(t.model, prompt_tokens, out) for t, out in worst)
        hold = Hold(
            call.request_id, call.principal.user_id, call.principal.key_id, call.target.public_id, amount
        )
        with self.db.session_scope() as conn:
            now = utcnow()
            if call.principal.limits:  # rate limits: same transaction, so the hold counts as in flight
                tokens = prompt_tokens + max(out for _, out in worst)
                ratelimit.admit(conn, call.principal.limits, tokens, now)
            billing.reserve(conn, hold, now)
        return hold

    def _attempt(self, call: Call, once: Callable[[Target, Channel], T]) -> T:
        """Run once() on each planned channel until one answers; only failures another may fix move on.

        This runs before the client has received a byte, so a retry changes nothing it has seen.
        """
        failure: GatewayError | None = None
        broken: set[str] = set()  # channels that failed as channels, whatever model they were asked for
        for target, channel in self.failover.plan(call.candidates()):
            if call.trace.attempts >= self.settings.max_attempts:
                break
            if channel.key in broken:
                continue
            call.trace.attempts += 1
            call.trace.target, call.trace.channel = target, channel.key
            try:
                return once(target, channel)
            except InvalidRequestError as exc:
                if target is call.target:
                    raise _traced(exc, call) from None  # the request does not fit the model it names
                call.trace.attempts -= 1  # skipped before any upstream call: not a try
                log.info("request %s: fallback %s cannot carry it", call.request_id, target.public_id)
            except UpstreamError as exc:
                if not failover.retryable(exc):
                    raise _traced(exc, call) from None
                self.failover.failed(target, channel, exc)
                if failover.channel_down(exc):
                    broken.add(channel.key)  # a fallback on the same provider would wait on it again
                self.notify("attempt_failed", call, channel.key, exc)
                log.warning("request %s: %s failed (%s)", call.request_id, channel.key, exc.message)
                failure = exc
        if failure is None:  # the primary sat out a cooldown, and no fallback could take the request
            call.trace.target = call.target  # nothing answered: the row and headers name what was asked
            failure = ServiceUnavailableError(
                f"Every channel of `{call.target.public_id}` is cooling down after failures; try again later."
            )
        raise _traced(failure, call)

    def complete(self, call: Call, hold: Hold) -> bytes:
        """Relay a whole answer; the usage row is written whatever happens."""
        status, outcome, usage = 500, "gateway_error", None
        try:
            body, usage = self._attempt(call, lambda target, channel: self._complete(call, target, channel))
            status, outcome = 200, "ok"
            return body
        except GatewayError as exc:
            status, outcome = exc.status, outcome_of(exc)
            raise
        finally:
            self.settle(call, hold, usage, status, outcome, None)

    def _complete(self, call: Call, target: Target, channel: Channel) -> tuple[bytes, Usage]:
        """One try on one channel: the client-ready body and its usage."""
        adapter = channel.adapter
        request = adapter.build_request(call.body, target.model.upstream_id, False, call.operation)
        sent = time.monotonic()
        try:
            resp = self.upstream.send(request)
            try:
                raw = resp.read(self.settings.max_upstream_body_bytes)
            finally:
                resp.close()
        finally:
            call.timing.upstream_s += time.monotonic() - sent
        if resp.status >= 400:
            raise adapter.parse_error(resp.status, raw, resp.headers)
        completion = adapter.parse_response(raw, target.public_id, call.operation)
        usage = completion.usage or Usage(
            prompt_tokens=pricing.estimate_tokens(call.raw_size),
            completion_tokens=0 if call.operation == EMBEDDINGS else pricing.estimate_tokens(len(raw)),
            estimated=True,
        )
        return completion.body, usage

    def open_stream(self, call: Call, hold: Hold) -> StreamRelay:
        """Open the stream and read to its first client bytes; failures before them raise here."""
        try:
            stream = self._attempt(call, lambda target, channel: self._open(call, hold, target, channel))
        except GatewayError as exc:
            self.settle(call, hold, None, exc.status, outcome_of(exc), None)
            raise
        except BaseException:
            self.settle(call, hold, None, 500, "gateway_error", None)
            raise
        self.notify("streams_changed", 1)
        return stream

    def _open(self, call: Call, hold: Hold, target: Target, channel: Channel) -> StreamRelay:
        """One try on one channel: a stream whose first client bytes are already read."""
        adapter = channel.adapter
        request = adapter.build_request(call.body, target.model.upstream_id, True, call.operation)
        sent = time.monotonic()
        try:
            resp = self.upstream.send(request)
        finally:
            call.timing.upstream_s += time.monotonic() - sent
        try:
            if resp.status >= 400:
                raw = resp.read(self.settings.max_upstream_body_bytes)
                raise adapter.parse_error(resp.status, raw, resp.headers)
            translator = adapter.translator(target.public_id, target.model.upstream_id, call.client_usage)
            stream = StreamRelay(self, call, hold, resp, translator)
            stream.start()
            return stream
        except BaseException:
            resp.close()  # drop the connection: the upstream stops generating an answer nobody reads
            raise

    def settle(
        self, call: Call, hold: Hold, usage: Usage | None, status: int, outcome: str, first_byte: float | None
    ) -> None:
        """Write the one usage row and move the money; retried, because the money is real."""
        usage = usage or Usage()
        hold = replace(hold, model=call.answered.public_id)  # the row names the model that answered
        now = time.monotonic()
        record = UsageRecord(
            status=status,
            outcome=outcome,
            stream=call.stream,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_micros=pricing.cost_micros(call.answered.model, usage),
            latency_ms=int((now - call.started) * 1000),
            ttfb_ms=None if first_byte is None else int((first_byte - call.started) * 1000),
            estimated=usage.estimated,
        )
        for attempt in range(3):
            try:
                with self.db.session_scope() as conn:
                    if not billing.settle(conn, hold, record, utcnow()):
                        log.warning("request %s was already settled or swept", call.request_id)
                break
            except Exception:
                # The hold stays until the sweep if every try fails; say so loudly.
                log.exception("settling request %s failed (try %d of 3)", call.request_id, attempt + 1)
                time.sleep(0.05 * (attempt + 1))
        _log_request(call, record)
        self.notify("settled", call, record)
        self.sweep_if_due()

    def notify(self, event: str, *args: Any) -> None:
        for observer in self.observers:
            try:
                getattr(observer, event)(*args)
            except Exception:  # observability fails open: it never fails a request
                log.exception("an observer failed on %s", event)

    def sweep_if_due(self) -> None:
        """Release holds of dead workers, at most once a minute per process; no cron needed."""
        now = time.monotonic()
        if now < self._next_sweep or not self._sweep_lock.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + min(60.0, self.settings.hold_timeout / 2)
            with self.db.session_scope() as conn:
                swept = billing.sweep(conn, timedelta(seconds=self.settings.hold_timeout), utcnow())
            if swept:
                log.warning("released %d hold(s) older than %ss", swept, self.settings.hold_timeout)
        except Exception:
            log.exception("sweeping stale holds failed")
        finally:
            self._sweep_lock.release()


def _traced(exc: GatewayError, call: Call) -> GatewayError:
    """Name the last model tried and the number of tries on an error, as on an answer."""
    exc.headers["X-Gateway-Model"] = call.answered.public_id
    exc.headers["X-Gateway-Attempts"] = str(call.trace.attempts)
    return exc


def _log_request(call: Call, record: UsageRecord) -> None:
    """Write the request's one log line: who, what, how it ended; never a key or prompt text."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    line = {
        "request_id": call.request_id,
        "key_prefix": call.principal.key_prefix,
        "user_id": call.principal.user_id,
        "model": call.answered.public_id,
        "channel": call.trace.channel,
        "attempts": call.trace.attempts,
        "status": record.status,
        "outcome": record.outcome,
        "stream": record.stream,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cost_micros": record.cost_micros,
        "estimated": record.estimated,
        "latency_ms": record.latency_ms,
        "ttfb_ms": record.ttfb_ms,
        "upstream_ms": round(call.timing.upstream_s * 1000, 2),
        "overhead_ms": round(call.timing.overhead_s(record.latency_ms / 1000) * 1000, 2),
    }
    access_log.info(json.dumps(line))

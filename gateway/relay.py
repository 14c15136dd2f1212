"""One call upstream, whole or streamed, between a reservation and exactly one settlement."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from gateway import billing, failover, pricing, ratelimit
from gateway.accounts import Principal, utcnow
from gateway.billing import Hold, UsageRecord
from gateway.catalog import Channel, Target
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    ServiceUnavailableError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gateway.failover import Failover
from gateway.providers.base import CHAT, EMBEDDINGS, StreamTranslator, Usage
from gateway.sse import Decoder, encode_data
from gateway.upstream import Upstream, UpstreamResponse

log = logging.getLogger("gateway.relay")
access_log = logging.getLogger("gateway.access")

T = TypeVar("T")
IMAGE_TOKENS = 2000  # an image part can cost far more tokens than the bytes of its URL


@dataclass
class Timing:
    """Where a request's time went, filled in as it runs: the rest is the gateway's own overhead."""

    upstream_s: float = 0.0  # waiting on the upstream: connecting, its answer, each streamed read
    client_s: float = 0.0  # streams: handing each chunk to the client's socket

    def overhead_s(self, elapsed: float) -> float:
        return max(0.0, elapsed - self.upstream_s - self.client_s)


@dataclass
class Trace:
    """Which attempt is running or answered: its target and channel, and how many were made."""

    attempts: int = 0
    target: Target | None = None
    channel: str = ""


@dataclass(frozen=True)
class Call:
    """Everything the relay needs about one authorised, validated request."""

    request_id: str
    principal: Principal
    target: Target
    body: dict[str, Any]
    raw_size: int
    stream: bool
    started: float  # time.monotonic() when the request arrived
    operation: str = CHAT  # CHAT, COMPLETIONS or EMBEDDINGS (providers.base)
    timing: Timing = field(default_factory=Timing, compare=False)
    trace: Trace = field(default_factory=Trace, compare=False)

    @property
    def answered(self) -> Target:
        """The target of the last attempt: the one that answered, once the call has succeeded."""
        return self.trace.target or self.target

    def candidates(self) -> list[Target]:
        """The target, then the fallbacks this key may use that offer the operation."""
        fallbacks = [
            t
            for t in self.target.fallbacks
            if self.principal.may_use(t.public_id) and t.adapter.supports(self.operation)
        ]
        return [self.target, *fallbacks]

    @property
    def client_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def max_output(self, default: int, target: Target | None = None) -> int:
        if self.operation == EMBEDDINGS:
            return 0  # embeddings are billed on input tokens only
        # n choices each produce up to the cap (routing validates n: at most MAX_CHOICES).
        n = self.body.get("n")
        choices = n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1
        for name in ("max_completion_tokens", "max_tokens"):
            value = self.body.get(name)
            if isinstance(value, int) and value > 0:
                return value * choices
        # The provider's max_tokens is what an adapter sends when the client sets none: hold that much.
        target = target or self.target
        return choices * (target.model.max_output_tokens or target.provider.max_tokens or default)


class Observer(Protocol):
    """Told of every settled request, streams opening and closing, and failed tries (e.g. metrics)."""

    def settled(self, call: Call, record: UsageRecord) -> None: ...

    def streams_changed(self, delta: int) -> None: ...

    def attempt_failed(self, call: Call, channel: str, exc: UpstreamError) -> None: ...


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, InvalidRequestError):
        return "invalid_request"  # an adapter found a field its provider's format cannot carry
    return "timeout" if isinstance(exc, UpstreamTimeoutError) else "upstream_error"


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
            status, outcome = exc.status, _outcome(exc)
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
            self.settle(call, hold, None, exc.status, _outcome(exc), None)
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


class StreamRelay:
    """The streamed body: relays each upstream event the moment it is complete, settles once.

    start() reads up to the first bytes for the client, so that a failure before them can still be
    retried or answered with its own status. The WSGI server calls close() when the client goes away
    or the body is done; close() shuts the upstream connection, so the provider stops generating,
    and bills what was relayed.
    """

    def __init__(
        self, relay: Relay, call: Call, hold: Hold, resp: UpstreamResponse, translator: StreamTranslator
    ) -> None:
        self.relay = relay
        self.call = call
        self.hold = hold
        self.resp = resp
        self.translator = translator
        self.outcome = "client_disconnected"
        self.first_byte: float | None = None
        self._events_gen = self._events()
        self._head = b""  # the first client bytes, read by start()
        self._ended: bytes | None = None  # the last bytes, when the stream ended within start()
        self._gen: Iterator[bytes] | None = None
        self._closed = False

    def start(self) -> None:
        """Read to the first client bytes; an upstream failure before them raises."""
        try:
            self._head = next(self._events_gen)
        except StopIteration as stop:
            self._ended = stop.value

    def __iter__(self) -> Iterator[bytes]:
        self._gen = self._relay()
        return self._gen

    def _relay(self) -> Iterator[bytes]:
        try:
            if self._head:
                yield self._head
            last = self._ended if self._ended is not None else (yield from self._events_gen)
            # Settle before the last bytes: a client that has seen [DONE] or the error event can
            # already find its usage row, and a disconnect at this point changes nothing.
            self._finish()
            yield last
        finally:
            self._finish()  # the client went away mid-stream, or the generator failed

    def _events(self) -> Generator[bytes, None, bytes]:
        """Yield each translated event as it completes; return the stream's last bytes."""
        decoder, translator, timing = Decoder(), self.translator, self.call.timing
        chunks = self.resp.chunks()
        try:
            while True:
                waited = time.monotonic()
                data = next(chunks, None)
                ready = time.monotonic()
                timing.upstream_s += ready - waited
                if data is None:
                    break
                for event in decoder.feed(data):
                    out = translator.feed(event)
                    if out:
                        self.first_byte = self.first_byte or ready
                        handed = time.monotonic()
                        yield b"".join(out)
                        timing.client_s += time.monotonic() - handed
            tail = [b for event in decoder.flush() for b in translator.feed(event)]
            last = b"".join(tail + translator.finish())
            self.outcome = "ok"
            return last
        except GatewayError as exc:
            if self.first_byte is None:
                raise  # nothing reached the client: the caller may retry, or answer with a status
            # Past the first byte the status is fixed: one in-band error event, then the end.
            self.outcome = _outcome(exc)
            error = {"error": exc.to_error(), "request_id": self.call.request_id}
            return encode_data(json.dumps(error).encode())

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()  # runs the generator's finally if it had started
        self._finish()

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.resp.close()
        self.relay.notify("streams_changed", -1)
        usage = self.translator.usage or Usage(
            prompt_tokens=pricing.estimate_tokens(self.call.raw_size),
            completion_tokens=pricing.estimate_tokens(self.translator.relayed_bytes),
            estimated=True,
        )
        self.relay.settle(self.call, self.hold, usage, 200, self.outcome, self.first_byte)

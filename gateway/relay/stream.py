"""A streamed answer: each upstream event relayed the moment it is complete, then one settlement."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

from gateway.clock import Clock
from gateway.errors import GatewayError
from gateway.providers.base import StreamTranslator, Usage
from gateway.providers.events import Event
from gateway.relay import pricing
from gateway.relay.call import Call, outcome_of
from gateway.surfaces.base import StreamWriter
from gateway.upstream.sse import Decoder
from gateway.upstream.transport import UpstreamResponse

# Called once when the stream is over: the usage (reported, or estimated and marked), the outcome,
# and when the first client bytes were ready (None if none were).
Finished = Callable[[Usage, str, float | None], None]
# The client format's in-band error: the one event that ends a stream failing after its first byte.
ErrorEvent = Callable[[GatewayError, str], bytes]


class ClientStream(StreamTranslator):
    """A translated stream for a client in another format: canonical frames through its writer."""

    def __init__(self, inner: StreamTranslator, writer: StreamWriter) -> None:
        self.inner = inner
        self.writer = writer

    def feed(self, event: Event) -> list[bytes]:
        out = [b for frame in self.inner.feed(event) for b in self.writer.feed(frame)]
        self.usage, self.relayed_bytes = self.inner.usage, self.inner.relayed_bytes
        return out

    def finish(self) -> list[bytes]:
        out = [b for frame in self.inner.finish() for b in self.writer.feed(frame)]
        self.usage, self.relayed_bytes = self.inner.usage, self.inner.relayed_bytes
        return out + self.writer.finish()


class StreamedAnswer:
    """The streamed body: relays each upstream event the moment it is complete, settles once.

    start() reads up to the first bytes for the client, so that a failure before them can still be
    retried or answered with its own status. The WSGI server calls close() when the client goes away
    or the body is done; close() shuts the upstream connection, so the provider stops generating,
    and calls finished() with what was relayed. A client gone before the usage event (which most
    providers send last) leaves the upstream read on, without relaying, for up to drain_s, so the
    provider's own count, hidden reasoning included, is billed rather than an estimate.
    """

    def __init__(
        self,
        call: Call,
        resp: UpstreamResponse,
        translator: StreamTranslator,
        clock: Clock,
        finished: Finished,
        error_event: ErrorEvent,
        drain_s: float = 0.0,
    ) -> None:
        self.call = call
        self.drain_s = drain_s
        self.error_event = error_event
        self.resp = resp
        self.translator = translator
        self.clock = clock
        self.finished = finished
        self.outcome = "client_disconnected"
        self.first_byte: float | None = None
        self._events_gen = self._events()
        self._head = b""  # the first client bytes, read by start()
        self._ended: bytes | None = None  # the last bytes, when the stream ended within start()
        self._gen: Generator[bytes, None, None] | None = None
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

    def _relay(self) -> Generator[bytes, None, None]:
        try:
            if self._head:
                yield self._head
            last = self._ended
            while last is None:
                # Not `yield from`: closing this generator must leave _events_gen open, to drain.
                try:
                    out = next(self._events_gen)
                except StopIteration as stop:
                    last = stop.value
                else:
                    yield out
            # Settle before the last bytes: a client that has seen [DONE] or the error event can
            # already find its usage row, and a disconnect at this point changes nothing.
            self._finish()
            yield last
        finally:
            self._finish()  # the client went away mid-stream, or the generator failed

    def _events(self) -> Generator[bytes, None, bytes]:
        """Yield each translated event as it completes; return the stream's last bytes."""
        decoder, translator, timing, monotonic = (
            Decoder(),
            self.translator,
            self.call.timing,
            self.clock.monotonic,
        )
        chunks = self.resp.chunks()
        try:
            while True:
                waited = monotonic()
                data = next(chunks, None)
                ready = monotonic()
                timing.upstream_s += ready - waited
                if data is None:
                    break
                for event in decoder.feed(data):
                    out = translator.feed(event)
                    if out:
                        self.first_byte = self.first_byte or ready
                        handed = monotonic()
                        yield b"".join(out)
                        timing.client_s += monotonic() - handed
            tail = [b for event in decoder.flush() for b in translator.feed(event)]
            last = b"".join(tail + translator.finish())
            self.outcome = "ok"
            return last
        except GatewayError as exc:
            if self.first_byte is None:
                raise  # nothing reached the client: the caller may retry, or answer with a status
            # Past the first byte the status is fixed: one in-band error event, then the end.
            self.outcome = outcome_of(exc)
            return self.error_event(exc, self.call.request_id)

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()  # runs the generator's finally if it had started
        self._finish()

    def _finish(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.outcome == "client_disconnected":
            self._drain()
        self.resp.close()
        usage = self.translator.usage or Usage(
            prompt_tokens=pricing.estimate_prompt_tokens(self.call.body, self.call.raw_size),
            completion_tokens=pricing.estimate_tokens(self.translator.relayed_bytes),
            estimated=True,
        )
        self.finished(usage, self.outcome, self.first_byte)

    def _drain(self) -> None:
        """Read on, relaying nothing, until the upstream's usage comes or drain_s is over."""
        deadline = self.clock.monotonic() + self.drain_s
        outcome = self.outcome
        try:
            while _estimated(self.translator.usage) and self.clock.monotonic() < deadline:
                next(self._events_gen)  # its output is for a client that is gone
        except StopIteration:
            pass  # the upstream finished (or failed in-band): its usage, if any, is in the translator
        finally:
            self.outcome = outcome


def _estimated(usage: Usage | None) -> bool:
    return usage is None or usage.estimated

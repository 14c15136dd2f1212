"""Reserve, call, settle: the pipeline of one request, whole or streamed; the money moves nowhere else."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from gateway.clock import SYSTEM, Clock
from gateway.config.settings import Settings
from gateway.errors import GatewayError
from gateway.observability.observer import Observer, Observers
from gateway.providers.base import EMBEDDINGS, UpstreamRequest, Usage
from gateway.relay import attempts, hold, pricing
from gateway.relay.call import Call, outcome_of
from gateway.relay.settlement import Settlement
from gateway.relay.stream import ClientStream, StreamedAnswer
from gateway.routing.catalog import Channel, Target
from gateway.routing.failover import Failover
from gateway.store.billing import Hold
from gateway.store.cooldowns import SharedCooldowns
from gateway.store.database import Database
from gateway.surfaces import openai_chat
from gateway.upstream.transport import Upstream

T = TypeVar("T")


class Relay:
    """Holds the worst case, tries the channels, relays the answer, settles exactly once."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        upstream: Upstream,
        observers: Sequence[Observer] = (),
        clock: Clock = SYSTEM,
    ) -> None:
        self.settings = settings
        self.db = db
        self.upstream = upstream
        self.clock = clock
        self.observers = Observers(observers)
        self.failover = Failover(clock=clock.monotonic, board=SharedCooldowns(db, clock))
        self.settlement = Settlement(settings, db, clock, self.observers)

    def reserve(self, call: Call) -> Hold:
        """Hold the call's worst-case cost, within the rate limits; raises a 429 when it cannot."""
        held = hold.reserve(self.db, self.clock, call, self.settings.default_max_tokens)
        self.settlement.held(held)
        return held

    def settle(
        self, call: Call, held: Hold, usage: Usage | None, status: int, outcome: str, first_byte: float | None
    ) -> None:
        self.settlement.settle(call, held, usage, status, outcome, first_byte)

    def complete(self, call: Call, held: Hold) -> bytes:
        """Relay a whole answer; the usage row is written whatever happens."""
        status, outcome, usage = 500, "gateway_error", None
        try:
            body, usage = self._try(call, lambda target, channel: self._complete(call, target, channel))
            status, outcome = 200, "ok"
            return body
        except GatewayError as exc:
            status, outcome = exc.status, outcome_of(exc)
            raise
        finally:
            self.settle(call, held, usage, status, outcome, None)

    def _request(
        self, call: Call, target: Target, channel: Channel, stream: bool
    ) -> tuple[UpstreamRequest, str]:
        """Build one try's upstream request, and say which operation it is.

        A client in another format goes up in that format when the upstream speaks it (nothing is
        lost), else in the canonical chat form. Either way the held output cap goes with it.
        """
        adapter, client, model = channel.adapter, call.request.client, target.model.upstream_id
        cap = (
            None
            if call.operation == EMBEDDINGS
            else hold.output_cap(call, target, self.settings.default_max_tokens)
        )
        if client is not None and adapter.supports(client.native_operation):
            operation = client.native_operation
            headers = client.forward_headers
            return adapter.build_request(
                client.native_body, model, stream, operation, max_output=cap, headers=headers
            ), operation
        return adapter.build_request(call.body, model, stream, call.operation, max_output=cap), call.operation

    def _complete(self, call: Call, target: Target, channel: Channel) -> tuple[bytes, Usage]:
        """One try on one channel: the client-ready body and its usage."""
        adapter, client = channel.adapter, call.request.client
        request, operation = self._request(call, target, channel, False)
        sent = self.clock.monotonic()
        try:
            resp = self.upstream.send(request)
            try:
                raw = resp.read(self.settings.max_upstream_body_bytes)
            finally:
                resp.close()
        finally:
            call.timing.upstream_s += self.clock.monotonic() - sent
        if resp.status >= 400:
            raise adapter.parse_error(resp.status, raw, resp.headers)
        completion = adapter.parse_response(raw, target.public_id, operation)
        body = completion.body
        if client is not None and operation != client.native_operation:
            body = client.answer(body, target.public_id)
        usage = completion.usage or Usage(
            prompt_tokens=pricing.estimate_prompt_tokens(call.body, call.raw_size),
            completion_tokens=0 if call.operation == EMBEDDINGS else pricing.estimate_answer_tokens(raw),
            estimated=True,
        )
        return body, usage

    def open_stream(self, call: Call, held: Hold) -> StreamedAnswer:
        """Open the stream and read to its first client bytes; failures before them raise here."""
        try:
            stream = self._try(call, lambda target, channel: self._open(call, held, target, channel))
        except GatewayError as exc:
            self.settle(call, held, None, exc.status, outcome_of(exc), None)
            raise
        except BaseException:
            self.settle(call, held, None, 500, "gateway_error", None)
            raise
        self.observers.streams_changed(1)
        return stream

    def _open(self, call: Call, held: Hold, target: Target, channel: Channel) -> StreamedAnswer:
        """One try on one channel: a stream whose first client bytes are already read."""
        adapter, client = channel.adapter, call.request.client
        request, operation = self._request(call, target, channel, True)
        sent = self.clock.monotonic()
        try:
            resp = self.upstream.send(request)
        finally:
            call.timing.upstream_s += self.clock.monotonic() - sent
        try:
            if resp.status >= 400:
                raise adapter.parse_error(
                    resp.status, resp.read(self.settings.max_upstream_body_bytes), resp.headers
                )
            translator = adapter.translator(
                target.public_id, target.model.upstream_id, call.request.client_usage, operation
            )
            if client is not None and operation != client.native_operation:
                translator = ClientStream(translator, client.writer(target.public_id))
            elif client is not None:
                translator = client.native_stream(translator)

            def finished(usage: Usage, outcome: str, first_byte: float | None) -> None:
                self.observers.streams_changed(-1)
                self.settle(call, held, usage, 200, outcome, first_byte)

            errors = client.error_event if client is not None else openai_chat.error_event
            stream = StreamedAnswer(
                call, resp, translator, self.clock, finished, errors, self.settings.drain_timeout
            )
            stream.start()
            return stream
        except BaseException:
            resp.close()  # drop the connection: the upstream stops generating an answer nobody reads
            raise

    def _try(self, call: Call, once: Callable[[Target, Channel], T]) -> T:
        return attempts.run(call, self.failover, self.settings.max_attempts, self.observers, once)

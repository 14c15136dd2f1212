"""Prometheus metrics: what every settled request did, and what is in flight, for /metrics.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py) makes every worker write its
samples to files there, and a scrape of any worker reads all of them: one view of the whole host.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.errors import (
    UpstreamAuthError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from gateway.observability.observer import Settled

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from sub-millisecond gateway work to minutes-long streams.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
)


class _HoldsCollector:
    """Reads the open holds from the store at scrape time: they are shared by every worker and host."""

    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count, amount = self.read()
        yield GaugeMetricFamily("gateway_holds_outstanding", "Requests holding money right now.", value=count)
        yield GaugeMetricFamily(
            "gateway_holds_outstanding_micros", "Micro-USD held by requests in flight.", value=amount
        )


class Metrics:
    """The gateway's metric families, in a registry of the app's own (tests build many apps)."""

    def __init__(self, multiprocess: bool = False) -> None:
        self.multiprocess = multiprocess
        self.registry = CollectorRegistry()
        labels = ["model", "status", "outcome"]
        self.requests = Counter(
            "gateway_requests",
            "Billed requests by model, status and outcome.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_seconds",
            "Whole request time, arrival to settlement.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream = Histogram(
            "gateway_upstream_seconds",
            "Time spent waiting on and reading the upstream.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttfb = Histogram(
            "gateway_time_to_first_token_seconds",
            "Arrival to the first streamed event.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "Time spent in the gateway outside the upstream call.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens billed, by model and kind (prompt, completion).",
            ["model", "kind"],
            registry=self.registry,
        )
        self.cost = Counter(
            "gateway_cost_micros", "Micro-USD billed, by model.", ["model"], registry=self.registry
        )
        self.upstream_failures = Counter(
            "gateway_upstream_failures",
            "Upstream tries that failed before the client's first byte, by channel and reason;"
            " each sent the request on to the next channel or fallback, if any.",
            ["channel", "reason"],
            registry=self.registry,
        )
        self.overruns = Counter(
            "gateway_settlement_overruns",
            "Requests whose reported usage cost more than their hold; each was charged the hold.",
            ["model"],
            registry=self.registry,
        )
        self.overrun_micros = Counter(
            "gateway_settlement_overrun_micros",
            "Micro-USD of reported cost beyond holds, not charged to anyone (a provider's bug).",
            ["model"],
            registry=self.registry,
        )
        # The labelled series of each model and outcome, by key: models and outcomes are few (the
        # catalog's, OUTCOMES), and two threads adding the same key store the same series.
        self._series: dict[str, _ModelSeries] = {}
        self._requests: dict[tuple[str, int, str], Counter] = {}
        self.active_streams = Gauge(
            "gateway_active_streams",
            "Streams being relayed now.",
            multiprocess_mode="livesum",
            registry=self.registry,
        )

    def record(
        self,
        model: str,
        status: int,
        outcome: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost_micros: int,
        latency_s: float,
        upstream_s: float,
        overhead_s: float,
        ttfb_s: float | None,
    ) -> None:
        """Count one settled request."""
        series = self._series.get(model)
        if series is None:
            series = self._series[model] = _ModelSeries(self, model)
        requests = self._requests.get((model, status, outcome))
        if requests is None:
            requests = self._requests[(model, status, outcome)] = self.requests.labels(
                model, str(status), outcome
            )
        requests.inc()
        series.latency.observe(latency_s)
        if upstream_s:
            self.upstream.labels(model).observe(upstream_s)
        self.overhead.observe(overhead_s)
        if ttfb_s is not None:
            self.ttfb.labels(model).observe(ttfb_s)
        series.prompt_tokens.inc(prompt_tokens)
        series.completion_tokens.inc(completion_tokens)
        series.cost.inc(cost_micros)

    def render(self, read_holds: Callable[[], tuple[int, int]]) -> bytes:
        """Return the text exposition: every worker's samples, plus the holds from the store."""
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
        else:
            registry = self.registry
        text = generate_latest(registry)
        extra = CollectorRegistry()
        extra.register(_HoldsCollector(read_holds))
        return text + generate_latest(extra)


class _ModelSeries:
    """The series every settled request of one model counts in, looked up once, not per request.

    labels() takes a lock and builds a key each call. Those only some requests count in (upstream
    time, time to first byte) are still looked up when used, so a model shows no empty ones.
    """

    def __init__(self, metrics: Metrics, model: str) -> None:
        self.latency = metrics.latency.labels(model)
        self.prompt_tokens = metrics.tokens.labels(model, "prompt")
        self.completion_tokens = metrics.tokens.labels(model, "completion")
        self.cost = metrics.cost.labels(model)


class MetricsObserver:
    """Counts every settled request, the streams in flight and failed upstream tries, for the relay."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def settled(self, event: Settled) -> None:
        self.metrics.record(
            model=event.model,
            status=event.status,
            outcome=event.outcome,
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            cost_micros=event.cost_micros,
            latency_s=event.latency_ms / 1000,
            upstream_s=event.upstream_s,
            overhead_s=event.overhead_s,
            ttfb_s=None if event.ttfb_ms is None else event.ttfb_ms / 1000,
        )
        if event.overrun_micros:
            self.metrics.overruns.labels(event.model).inc()
            self.metrics.overrun_micros.labels(event.model).inc(event.overrun_micros)

    def streams_changed(self, delta: int) -> None:
        self.metrics.active_streams.inc(delta)

    def attempt_failed(self, channel: str, exc: UpstreamError) -> None:
        self.metrics.upstream_failures.labels(channel, failure_reason(exc)).inc()


def failure_reason(exc: UpstreamError) -> str:
    """A label of few values: the upstream's own error codes are its to choose, so not those."""
    if isinstance(exc, UpstreamStatusError):
        return f"http_{exc.status}"
    return {
        UpstreamTimeoutError: "timeout",
        UpstreamConnectionError: "connection",
        UpstreamAuthError: "auth",
        UpstreamProtocolError: "protocol",
    }.get(type(exc), "other")

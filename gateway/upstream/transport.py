"""The upstream door the relay uses: each request goes to the transport of its URL's scheme."""

from __future__ import annotations

from typing import Protocol

from gateway.providers.base import UpstreamRequest
from gateway.upstream.http import HttpTransport
from gateway.upstream.mock import MockTransport
from gateway.upstream.response import UpstreamResponse


class Transport(Protocol):
    def send(self, req: UpstreamRequest) -> UpstreamResponse:
        """Send a request and return once the upstream's status and headers have arrived."""
        ...


class Upstream:
    """Sends each request through the transport for its scheme: http(s), or mock for the built-in model."""

    def __init__(self, transports: dict[str, Transport] | None = None) -> None:
        http = HttpTransport()
        self.transports: dict[str, Transport] = transports or {
            "http": http,
            "https": http,
            "mock": MockTransport(),
        }

    def send(self, req: UpstreamRequest) -> UpstreamResponse:
        """Send a request and return once the upstream's status and headers have arrived."""
        return self.transports[req.url.partition(":")[0]].send(req)

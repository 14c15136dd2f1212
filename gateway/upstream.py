"""The only door to upstream HTTP: pooled per-thread sessions, timeouts, transport errors made ours."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import requests
import requests.adapters
import requests.structures
import requests.utils
import urllib3.exceptions

from gateway.errors import (
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from gateway.providers import mock
from gateway.providers.base import UpstreamRequest

READ_SIZE = 65536


def _translate(exc: BaseException, provider: str) -> UpstreamError:
    # Messages name the provider, never its URL: an internal address is not the client's business.
    if isinstance(exc, requests.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError):
        return UpstreamTimeoutError(f"Provider '{provider}' did not accept the connection in time.")
    if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return UpstreamTimeoutError(f"Provider '{provider}' stopped sending for too long.")
    return UpstreamConnectionError(f"The connection to provider '{provider}' failed.")


_TRANSPORT = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
# What a requests.Session would add: its user agent, and the encodings read1 below decodes.
_DEFAULT_HEADERS = {
    "User-Agent": requests.utils.default_user_agent(),
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
}
_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)


class Clock:
    """One attempt's deadlines: the first body byte, each later read, and the whole answer."""

    def __init__(self, req: UpstreamRequest, sent: float) -> None:
        self.provider = req.provider
        self.req = req
        self.first_byte_at = sent + req.first_byte_timeout
        self.total_at = sent + req.total_timeout
        self.started = False  # has any body byte arrived?

    def wait(self) -> float:
        """Return how long the next read may block; raise the timeout that has already passed."""
        now = time.monotonic()
        until = min(self.total_at, now + self.req.idle_timeout if self.started else self.first_byte_at)
        if until <= now:
            raise self.expired(now)
        return until - now

    def expired(self, now: float | None = None) -> UpstreamTimeoutError:
        """Return the error for the deadline that has passed (or was the nearer one at a socket timeout)."""
        now = time.monotonic() if now is None else now
        name, req = self.provider, self.req
        if now >= self.total_at - 0.001 or (
            not self.started and self.total_at <= self.first_byte_at
        ):  # the total was the nearer deadline
            return UpstreamTimeoutError(f"Provider '{name}' did not finish within {req.total_timeout:g} s.")
        if not self.started:
            return UpstreamTimeoutError(
                f"Provider '{name}' did not start answering within {req.first_byte_timeout:g} s."
            )
        return UpstreamTimeoutError(f"Provider '{name}' sent nothing for {req.idle_timeout:g} s mid-answer.")


class UpstreamResponse:
    """An upstream answer whose body is read on demand; close() drops the connection if unread."""

    def __init__(
        self,
        provider: str,
        status: int,
        headers: dict[str, str],
        read: Callable[[float | None], bytes],
        close: Callable[[bool], None],
        clock: Clock | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.headers = headers
        self._read = read  # called with the read's timeout in seconds, or None for no limit
        self._close = close
        self._clock = clock
        self._eof = False

    def chunks(self) -> Iterator[bytes]:
        """Yield body bytes as they arrive, within the first-byte, idle and total timeouts."""
        clock = self._clock
        while True:
            try:
                data = self._read(clock.wait() if clock else None)
            except _TIMEOUTS as exc:
                raise (clock.expired() if clock else _translate(exc, self.provider)) from exc
            except _TRANSPORT as exc:
                raise _translate(exc, self.provider) from exc
            if not data:
                self._eof = True
                return
            if clock:
                clock.started = True
            yield data

    def read(self, limit: int) -> bytes:
        """Read the whole body, refusing one larger than limit."""
        parts, size = [], 0
        for data in self.chunks():
            size += len(data)
            if size > limit:
                raise UpstreamProtocolError(
                    f"Provider '{self.provider}' sent a response larger than the gateway accepts."
                )
            parts.append(data)
        return b"".join(parts)

    def close(self) -> None:
        """Return a fully read connection to the pool; close one cut short, so the upstream stops."""
        self._close(self._eof)


class Upstream:
    """Sends upstream requests through one requests adapter per thread (pooled keep-alive).

    Requests go straight to the adapter, past Session.request: merging cookies, hooks, environment
    and default settings cost about a fifth of the gateway's CPU per request, and the gateway uses
    none of them (no cookies, no redirects: an API answers where it is asked).
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def _adapter(self) -> requests.adapters.HTTPAdapter:
        adapter = getattr(self._local, "adapter", None)
        if adapter is None:
            adapter = self._local.adapter = requests.adapters.HTTPAdapter()
        return adapter

    def send(self, req: UpstreamRequest) -> UpstreamResponse:
        """Send a request and return once the upstream's status and headers have arrived."""
        if req.url.startswith("mock://"):
            return _mock_response(req)
        clock = Clock(req, time.monotonic())
        prepared = requests.PreparedRequest()
        prepared.method, prepared.url, prepared.body = "POST", req.url, req.body
        prepared.headers = requests.structures.CaseInsensitiveDict(_DEFAULT_HEADERS)
        prepared.headers.update(req.headers)
        prepared.headers["Content-Length"] = str(len(req.body))
        try:
            resp = self._adapter().send(
                prepared,
                stream=True,
                # The headers must come within the first-byte (and total) deadline.
                timeout=(req.connect_timeout, min(req.first_byte_timeout, req.total_timeout)),
                proxies={"http": req.proxy, "https": req.proxy} if req.proxy else None,
            )
        except (requests.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError) as exc:
            raise _translate(exc, req.provider) from exc
        except _TIMEOUTS as exc:
            raise clock.expired() from exc
        except _TRANSPORT as exc:
            raise _translate(exc, req.provider) from exc
        raw = resp.raw

        def read(timeout: float | None) -> bytes:
            # Each read waits at most until the nearest deadline: set on the socket, which every
            # later recv of this response uses.
            sock = getattr(raw.connection, "sock", None)
            if sock is not None and timeout is not None:
                sock.settimeout(timeout)
            # requests asks for gzip and deflate but leaves raw bodies encoded; decode them here.
            return raw.read1(READ_SIZE, decode_content=True)

        def close(eof: bool) -> None:
            if eof:
                raw.release_conn()
            else:
                resp.close()

        headers = {k.lower(): v for k, v in resp.headers.items()}
        return UpstreamResponse(req.provider, resp.status_code, headers, read, close, clock)


def _mock_response(req: UpstreamRequest) -> UpstreamResponse:
    reply = mock.respond(req)
    chunks = reply.chunks
    return UpstreamResponse(
        req.provider, reply.status, reply.headers, lambda timeout: next(chunks, b""), lambda eof: None
    )

"""The only door to upstream HTTP: pooled per-thread sessions, timeouts, transport errors made ours."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import requests
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


class UpstreamResponse:
    """An upstream answer whose body is read on demand; close() drops the connection if unread."""

    def __init__(
        self,
        provider: str,
        status: int,
        headers: dict[str, str],
        read: Callable[[], bytes],
        close: Callable[[bool], None],
    ) -> None:
        self.provider = provider
        self.status = status
        self.headers = headers
        self._read = read
        self._close = close
        self._eof = False

    def chunks(self) -> Iterator[bytes]:
        """Yield body bytes as they arrive."""
        while True:
            try:
                data = self._read()
            except _TRANSPORT as exc:
                raise _translate(exc, self.provider) from exc
            if not data:
                self._eof = True
                return
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
    """Sends upstream requests through one requests.Session per thread (pooled keep-alive)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # no proxies or netrc from the environment on the hot path
        return session

    def send(self, req: UpstreamRequest) -> UpstreamResponse:
        """Send a request and return once the upstream's status and headers have arrived."""
        if req.url.startswith("mock://"):
            return _mock_response(req)
        try:
            resp = self._session().post(
                req.url,
                data=req.body,
                headers=dict(req.headers),
                stream=True,
                timeout=(req.connect_timeout, req.read_timeout),
            )
        except _TRANSPORT as exc:
            raise _translate(exc, req.provider) from exc
        raw = resp.raw

        def close(eof: bool) -> None:
            if eof:
                raw.release_conn()
            else:
                resp.close()

        return UpstreamResponse(
            req.provider,
            resp.status_code,
            {k.lower(): v for k, v in resp.headers.items()},
            # requests asks for gzip and deflate but leaves raw bodies encoded; decode them here.
            lambda: raw.read1(READ_SIZE, decode_content=True),
            close,
        )


def _mock_response(req: UpstreamRequest) -> UpstreamResponse:
    reply = mock.respond(req)
    chunks = reply.chunks
    return UpstreamResponse(
        req.provider, reply.status, reply.headers, lambda: next(chunks, b""), lambda eof: None
    )

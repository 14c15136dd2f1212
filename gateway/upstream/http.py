"""Upstream HTTP(S) through requests: pooled per-thread connections, deadlines on the socket, and the
one place where transport exceptions become ours."""

from __future__ import annotations

import http.client
import threading
import time

import requests
import requests.adapters
import requests.structures
import requests.utils
import urllib3.exceptions
import urllib3.response

from gateway.errors import UpstreamConnectionError, UpstreamError, UpstreamTimeoutError
from gateway.providers.base import UpstreamRequest
from gateway.upstream.deadline import Deadlines
from gateway.upstream.response import UpstreamResponse

READ_SIZE = 65536


def _translate(exc: BaseException, provider: str) -> UpstreamError:
    # Messages name the provider, never its URL: an internal address is not the client's business.
    if isinstance(exc, requests.ConnectTimeout | urllib3.exceptions.ConnectTimeoutError):
        return UpstreamTimeoutError(f"Provider '{provider}' did not accept the connection in time.")
    if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return UpstreamTimeoutError(f"Provider '{provider}' stopped sending for too long.")
    return UpstreamConnectionError(f"The connection to provider '{provider}' failed.")


# http.client's IncompleteRead (a chunked body cut short) comes through only on the plain path below.
_TRANSPORT = (requests.RequestException, urllib3.exceptions.HTTPError, OSError, http.client.HTTPException)


# What a requests.Session would add: its user agent, and the encodings read1 below decodes.
_DEFAULT_HEADERS = {
    "User-Agent": requests.utils.default_user_agent(),
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
}


_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)


class HttpTransport:
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
        deadlines = Deadlines(req, time.monotonic())
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
            raise deadlines.expired() from exc
        except _TRANSPORT as exc:
            raise _translate(exc, req.provider) from exc
        raw = resp.raw
        plain = _plain_chunked(raw)

        def read(timeout: float | None) -> bytes:
            # Each read waits at most until the nearest deadline: set on the socket, which every
            # later recv of this response uses.
            sock = getattr(raw.connection, "sock", None)
            if sock is not None and timeout is not None:
                sock.settimeout(timeout)
            try:
                if plain is not None:
                    data = plain.read1(READ_SIZE)
                    if not data:
                        plain.close()  # as urllib3 does: http.client does not always close at the end
                    return data
                # requests asks for gzip and deflate but leaves raw bodies encoded; decode them here.
                return raw.read1(READ_SIZE, decode_content=True)
            except _TIMEOUTS as exc:
                raise TimeoutError() from exc
            except _TRANSPORT as exc:
                raise _translate(exc, req.provider) from exc

        def close(eof: bool) -> None:
            if eof:
                raw.release_conn()
            else:
                resp.close()

        headers = {k.lower(): v for k, v in resp.headers.items()}
        return UpstreamResponse(req.provider, resp.status_code, headers, read, close, deadlines)


def _plain_chunked(raw: urllib3.response.HTTPResponse) -> http.client.HTTPResponse | None:
    """Return the http.client response under a chunked, unencoded body (a stream), else None.

    Such a body is read from it directly: urllib3's read1 adds a decoder check, a buffer and an
    exception-translating context manager per read, about a fifth of a relayed chunk's CPU, and
    has nothing to do here. http.client still undoes the chunked framing and raises IncompleteRead
    when the body is cut short. A Content-Length body keeps urllib3's path, which checks the length.
    """
    fp = getattr(raw, "_fp", None)
    if not isinstance(fp, http.client.HTTPResponse) or not fp.chunked:
        return None
    if raw.headers.get("content-encoding", "identity").lower() != "identity":
        return None
    return fp

"""An upstream answer whose body is read on demand, within its deadlines; close() frees or drops it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from gateway.errors import UpstreamProtocolError, UpstreamTimeoutError
from gateway.upstream.deadline import Deadlines


class UpstreamResponse:
    """An upstream answer whose body is read on demand; close() drops the connection if unread.

    The transport's read(timeout) returns the next bytes (b"" at the end), raises TimeoutError when
    the wait ran out, and raises an UpstreamError for any other failure, already made ours.
    """

    def __init__(
        self,
        provider: str,
        status: int,
        headers: dict[str, str],
        read: Callable[[float | None], bytes],
        close: Callable[[bool], None],
        deadlines: Deadlines | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.headers = headers
        self._read = read  # called with the read's timeout in seconds, or None for no limit
        self._close = close
        self._deadlines = deadlines
        self._eof = False

    def chunks(self) -> Iterator[bytes]:
        """Yield body bytes as they arrive, within the first-byte, idle and total timeouts."""
        deadlines = self._deadlines
        while True:
            try:
                data = self._read(deadlines.wait() if deadlines else None)
            except TimeoutError as exc:
                if deadlines is None:
                    raise UpstreamTimeoutError(
                        f"Provider '{self.provider}' stopped sending for too long."
                    ) from exc
                raise deadlines.expired() from exc
            if not data:
                self._eof = True
                return
            if deadlines:
                deadlines.started = True
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

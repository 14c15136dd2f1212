"""Decode server-sent events from upstream bytes, as they arrive.

The decoder follows the WHATWG event-stream rules (https://html.spec.whatwg.org/multipage/server-sent-events.html):
lines end in CR, LF or CRLF (a CRLF may be split across reads), comments start with ':', several
data lines join with '\\n', and there is no line cap.
"""

from __future__ import annotations

import json

from gateway.providers.events import Event


class Decoder:
    """Incremental SSE decoder: feed() bytes as they arrive, flush() at end of stream."""

    def __init__(self) -> None:
        self._rest: list[bytes] = []  # pieces of the unfinished last line
        self._skip_lf = False
        self._data: list[bytes] = []
        self._event: str | None = None
        self._bare: list[bytes] = []  # lines of a bare JSON body not yet complete

    def feed(self, chunk: bytes) -> list[Event]:
        """Return the events completed by this chunk."""
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
            self._skip_lf = False
        if not chunk:
            return []  # an empty read must not forget a pending CR
        self._skip_lf = False
        if b"\n" not in chunk and b"\r" not in chunk:
            # Still inside one (maybe many-MiB) line: keep the pieces and join them once, at its end,
            # so a long line arriving in small reads costs linear, not quadratic, time.
            self._rest.append(chunk)
            return []
        buf = b"".join((*self._rest, chunk)) if self._rest else chunk
        if b"\r" in buf:
            # A CR at the very end may be the first half of a CRLF: end the line now, drop the LF later.
            self._skip_lf = buf.endswith(b"\r")
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        rest = lines.pop()
        self._rest = [rest] if rest else []
        events: list[Event] = []
        for line in lines:
            self._line(line, events)
        return events

    def flush(self) -> list[Event]:
        """End the stream: an unterminated last line and event are dispatched, not lost."""
        events: list[Event] = []
        if self._rest:
            self._line(b"".join(self._rest), events)
            self._rest = []
        self._line(b"", events)
        return events

    def _bare_line(self, line: bytes, events: list[Event]) -> None:
        # Some upstreams (Ollama, Gemini) write a bare JSON error body into the stream, without
        # "data:", on one line or pretty-printed over several: gather it until it parses as JSON,
        # then hand it on as one data event (docs/wire-formats.md#sse-bare-json-errors).
        self._bare.append(line)
        if line.lstrip()[:1] in (b"{", b"}") or len(self._bare) == 1:
            joined = b"\n".join(self._bare)
            try:
                json.loads(joined)
            except (ValueError, RecursionError):
                return
            self._bare = []
            events.append(Event(data=joined))

    def _line(self, line: bytes, events: list[Event]) -> None:
        if not line and self._bare:
            # A blank line ends even a bare body that never parsed: the translator says what it is.
            events.append(Event(data=b"\n".join(self._bare)))
            self._bare = []
            return
        if not line:
            if self._data or self._event is not None:
                data = b"\n".join(self._data) if self._data else None
                events.append(Event(data=data, event=self._event))
            self._data = []
            self._event = None
            return
        if line[:1] == b":":
            events.append(Event(comment=line))
            return
        if self._bare or line[:1] == b"{":
            self._bare_line(line, events)
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        # id and retry are ignored on purpose: we never relay them (docs/wire-formats.md#sse-never-send-id).

"""A fast fake OpenAI upstream for `make bench`: whole answers at once, streams on a fixed schedule.

One asyncio process, callbacks instead of tasks, every response pre-encoded: it must never be the
bottleneck. A request with "stream": true gets CHUNKS content events INTERVAL seconds apart (the first
at once), then a finish chunk, a usage chunk and [DONE]; any other request gets one whole completion.
It prints "listening PORT" on stdout once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

PROMPT_TOKENS = 12
MAX_HEAD = 64 * 1024


def _json(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, object]:
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "stream",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _sse_chunk(data: bytes) -> bytes:
    event = b"data: " + data + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


class Answers:
    """Every byte string the fake sends, built once."""

    def __init__(self, chunks: int) -> None:
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": chunks,
            "total_tokens": PROMPT_TOKENS + chunks,
        }
        body = _json(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": 1700000000,
                "model": "whole",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Hi there!", "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": dict(usage, completion_tokens=4, total_tokens=PROMPT_TOKENS + 4),
            }
        )
        self.whole = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )
        self.stream_head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        self.first = _sse_chunk(_json(_chunk({"role": "assistant", "content": "tok"})))
        self.next = _sse_chunk(_json(_chunk({"content": " tok"})))
        usage_chunk = dict(_chunk({}), choices=[], usage=usage)
        self.tail = (
            _sse_chunk(_json(_chunk({}, "stop")))
            + _sse_chunk(_json(usage_chunk))
            + _sse_chunk(b"[DONE]")
            + b"0\r\n\r\n"
        )
        self.not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: requests are answered in order, a stream blocks the next one."""

    def __init__(self, answers: Answers, chunks: int, interval: float) -> None:
        self.answers = answers
        self.chunks = chunks
        self.interval = interval
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.streaming = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._serve()

    def _serve(self) -> None:
        while not self.streaming and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.transport.close()
                return
            head = self.buf[:end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4 : end + 4 + length]
            self.buf = self.buf[end + 4 + length :]
            if not head.startswith(b"post /v1/chat/completions "):
                self.transport.write(self.answers.not_found)
                continue
            try:
                stream = json.loads(body).get("stream") is True
            except (ValueError, AttributeError):
                stream = False
            if not stream:
                self.transport.write(self.answers.whole)
                continue
            self.streaming = True
            self.transport.write(self.answers.stream_head + self.answers.first)
            self._schedule(1)

    def _schedule(self, sent: int) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.interval, self._tick, sent)

    def _tick(self, sent: int) -> None:
        self.timer = None
        if self.transport is None:
            return
        if sent < self.chunks:
            self.transport.write(self.answers.next)
            self._schedule(sent + 1)
            return
        self.transport.write(self.answers.tail)
        self.streaming = False
        self._serve()


async def serve(host: str, port: int, chunks: int, interval: float) -> None:
    loop = asyncio.get_running_loop()
    answers = Answers(chunks)
    server = await loop.create_server(
        lambda: UpstreamProtocol(answers, chunks, interval), host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.chunks, args.interval))


if __name__ == "__main__":
    sys.exit(main())

"""An asyncio load generator for streamed chat completions: raw HTTP/1.1, one connection per stream.

Each of CONCURRENCY clients starts at a random moment within RAMP seconds, then runs ROUNDS streams
back to back (or keeps going until --duration seconds have passed), so the target holds about
CONCURRENCY streams open at once. It prints one JSON line: errors, time to first byte and the gaps
between consecutive content events, as seen by the client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field

STREAM_SLACK = 30.0  # seconds a stream may run past its schedule before it counts as an error


@dataclass
class Tally:
    ttfb: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    streams: int = 0
    active: int = 0
    peak_active: int = 0
    receiving: int = 0  # streams between their first and their last content event
    peak_receiving: int = 0

    def receive(self, step: int) -> None:
        self.receiving += step
        self.peak_receiving = max(self.peak_receiving, self.receiving)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


class StreamProtocol(asyncio.Protocol):
    """Reads one streamed response with callbacks, much cheaper than StreamReader awaits.

    It stamps each `data: ` event when its bytes arrive and stops at `data: [DONE]`. The chunked
    framing is not decoded: a carry of the last bytes finds markers split across reads.
    """

    def __init__(self, request: bytes, chunks: int, tally: Tally) -> None:
        self.request = request
        self.chunks = chunks
        self.tally = tally
        self.phase = "waiting"  # then "receiving" from the first content event to the last, then "done"
        self.arrivals: list[float] = []
        self.head = b""
        self.status = b""
        self.carry = b""
        self.transport: asyncio.BaseTransport | None = None
        self.done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.status:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = self.head.split(b" ", 2)[1]
            if self.status != b"200":
                self._finish(f"status_{self.status.decode(errors='replace')}")
                return
            data = self.head[end + 4 :]
        text = self.carry + data
        # The carry (11 bytes) is shorter than a marker, so no marker is counted twice.
        count = text.count(b"data: ")
        self.arrivals.extend([now] * count)
        if self.phase == "waiting" and count:
            self.phase = "receiving"
            self.tally.receive(1)
        if len(self.arrivals) >= self.chunks:
            self._stop_receiving()
        if b"data: [DONE]" in text:
            self._finish(None)
            return
        self.carry = text[-11:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish("closed_early")

    def _stop_receiving(self) -> None:
        if self.phase == "receiving":
            self.tally.receive(-1)
        self.phase = "done"

    def _finish(self, error: str | None) -> None:
        self._stop_receiving()
        if not self.done.done():
            self.done.set_result(error)
        if self.transport is not None:
            self.transport.close()


async def one_stream(args: argparse.Namespace, request: bytes, tally: Tally) -> None:
    tally.active += 1
    tally.peak_active = max(tally.peak_active, tally.active)
    loop = asyncio.get_running_loop()
    proto: StreamProtocol | None = None
    try:
        started = time.perf_counter()
        _, proto = await loop.create_connection(
            lambda: StreamProtocol(request, args.chunks, tally), args.host, args.port
        )
        error = await proto.done
        if error is not None:
            tally.error(error)
            return
        # The first CHUNKS data events carry content; the finish and usage chunks come after.
        arrivals = proto.arrivals[: args.chunks]
        if len(arrivals) < args.chunks:
            tally.error("incomplete")
            return
        tally.ttfb.append(arrivals[0] - started)
        tally.gaps.extend(b - a for a, b in zip(arrivals, arrivals[1:]))
        tally.streams += 1
    except OSError as exc:
        tally.error(type(exc).__name__)
    finally:
        tally.active -= 1
        if proto is not None and proto.transport is not None:
            proto.transport.close()


async def client(args: argparse.Namespace, request: bytes, tally: Tally, deadline: float | None) -> None:
    await asyncio.sleep(random.uniform(0, args.ramp))
    budget = args.chunks * args.interval + STREAM_SLACK
    rounds = 0
    while True:
        try:
            await asyncio.wait_for(one_stream(args, request, tally), budget)
        except TimeoutError:
            tally.error("timeout")
        rounds += 1
        if deadline is None and rounds >= args.rounds:
            return
        if deadline is not None and time.monotonic() >= deadline:
            return


async def run(args: argparse.Namespace) -> dict[str, object]:
    body = json.dumps(
        {
            "model": args.model,
            "stream": True,
            "max_tokens": args.chunks + 10,
            "messages": [{"role": "user", "content": "Count slowly, please."}],
        }
    ).encode()
    request = (
        f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        f"Authorization: Bearer {args.key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    tally = Tally()
    deadline = time.monotonic() + args.duration if args.duration else None
    started = time.monotonic()
    await asyncio.gather(*(client(args, request, tally, deadline) for _ in range(args.concurrency)))
    return {
        "concurrency": args.concurrency,
        "streams_ok": tally.streams,
        "errors": sum(tally.errors.values()),
        "error_kinds": tally.errors,
        "peak_active": tally.peak_active,
        "peak_receiving": tally.peak_receiving,
        "elapsed_s": round(time.monotonic() - started, 2),
        "ttfb_p50_ms": _ms(percentile(tally.ttfb, 50)),
        "ttfb_p99_ms": _ms(percentile(tally.ttfb, 99)),
        "gap_p50_ms": _ms(percentile(tally.gaps, 50)),
        "gap_p99_ms": _ms(percentile(tally.gaps, 99)),
        "gap_max_ms": _ms(max(tally.gaps) if tally.gaps else None),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--model", default="stream")
    parser.add_argument("--key", default="none")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ramp", type=float, default=2.5)
    parser.add_argument("--duration", type=float, default=0.0, help="loop until then (soak), not rounds")
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    sys.exit(main())

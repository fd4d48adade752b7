"""A minimal raw asyncio WebSocket client for the fan-out benchmark: handshake by hand, unmasked
server frames parsed in place, client frames masked. About 2-5 µs per received frame (the
`websockets` client costs 15-30 and would saturate before the server does).

Two dialects over the same code: `WsClient` speaks the product's protocol on `/api/ws` (the
real server and the floor server), `SocketIOClient` speaks Engine.IO v4 / Socket.IO v5 in
WebSocket mode (the python-socketio server) and carries the product's frames as event data.
Both check that every `seq` arrives exactly once, in order, with `pulse_core.protocol`.
"""

from __future__ import annotations

import array
import asyncio
import base64
import hashlib
import json
import os
import time
from collections import Counter

from bench.processes import HOST
from pulse_core.names import FrameType
from pulse_core.protocol import (
    DELIVER,
    EVENT_FRAME_PREFIX,
    CloseCode,
    Error,
    ErrorCode,
    FrameError,
    Subscribe,
    Subscribed,
    TopicCursor,
    encode,
    parse_server_frame,
)
from pulse_core.topics import parse_topic

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
NO_RECORDING = 1 << 62


def masked_frame(opcode: int, payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    key = os.urandom(4)
    stream = (key * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(
        length, "big"
    )
    return header + key + masked


class Counters:
    """What one client process has seen, summed over its connections."""

    def __init__(self) -> None:
        self.frames = 0  # event frames
        self.gaps = 0  # event frames whose seq was not the previous one + 1
        self.slow = 0  # connections told `slow_consumer` or closed with 4408
        self.errors = 0  # error frames and protocol surprises
        self.closed = 0  # subscribed connections that closed before the end
        self.subscribed = 0
        self.failed = 0  # connections that could not be opened and subscribed
        self.last_frame_ns = 0  # time.monotonic_ns() of the last event frame
        self.rec_lo = NO_RECORDING  # record latency of events with rec_lo <= seq <= rec_hi
        self.rec_hi = 0
        self.latencies = array.array("q")  # ns, receive time - sent_ns
        self.close_codes: Counter[int] = Counter()
        self.messages: list[str] = []

    def note(self, message: str) -> None:
        if len(self.messages) < 5:
            self.messages.append(message)


class WsClient(asyncio.Protocol):
    """One subscriber of `topic` on `/api/ws`, speaking the product's protocol."""

    PATH = "/api/ws"
    # How an event's text begins, and how many bytes follow its last value (`sent_ns`).
    EVENT_PREFIX = EVENT_FRAME_PREFIX.encode()
    EVENT_TAIL = 1

    def __init__(self, counters: Counters, host: str, port: int, token: str, topic: str) -> None:
        self.c = counters
        self.topic = parse_topic(topic)
        key = base64.b64encode(os.urandom(16))
        self.accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        self.request = (
            f"GET {self.PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        self.subscribed = False
        self.slow = False
        self.closed = False
        self.cursor = TopicCursor(0)  # the last seq received
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.subscribed:
            self.c.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection lost before subscribed: {exc}"))

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > 16384:
                    self._fail("handshake response too long")
                else:
                    self.buf = data
                return
            if not self._handshake(data[:end]):
                return
            data = data[end + 4 :]
            if not data:
                return
        self._frames(data)

    # the protocol

    def _handshake(self, head: bytes) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            self._fail(f"upgrade refused: {lines[0]!r}")
            return False
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("sec-websocket-accept", "").encode() != self.accept:
            self._fail("bad Sec-WebSocket-Accept")
            return False
        if "sec-websocket-extensions" in headers:
            self._fail(f"server negotiated extensions: {headers['sec-websocket-extensions']}")
            return False
        self.upgraded = True
        self._upgraded()
        return True

    def _upgraded(self) -> None:
        self._send(0x1, encode(Subscribe(self.topic)).encode())

    def _frames(self, data: bytes) -> None:
        c = self.c
        prefix = self.EVENT_PREFIX
        tail = self.EVENT_TAIL
        size = len(data)
        pos = 0
        now_ns = 0
        events = 0
        while size - pos >= 2:
            b0 = data[pos]
            b1 = data[pos + 1]
            length = b1 & 0x7F
            if length < 126:
                start = pos + 2
            elif length == 126:
                if size - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            if b1 & 0x80:
                self._fail("the server sent a masked frame")
                return
            end = start + length
            if end > size:
                break
            opcode = b0 & 0x0F
            if opcode == 1 and b0 & 0x80:
                if data.startswith(prefix, start):
                    at = data.find(b'"seq":', start, end) + 6
                    seq = int(data[at : data.find(b",", at, end)])
                    if self.cursor.on_event(seq) is not DELIVER:
                        c.gaps += 1  # a gap or a duplicate
                    events += 1
                    if c.rec_lo <= seq <= c.rec_hi:
                        if not now_ns:
                            now_ns = time.time_ns()
                        at = data.rfind(b'"sent_ns":', start, end) + 10
                        c.latencies.append(now_ns - int(data[at : end - tail]))
                else:
                    self._control(data[start:end])
            elif opcode == 0x9:
                self._send(0xA, data[start:end])
            elif opcode == 0x8:
                self._closed_by_server(data[start:end])
                return
            elif opcode != 0xA:
                c.errors += 1
                c.note(f"unexpected frame opcode {opcode} fin {b0 >> 7}")
            pos = end
        if pos < size:
            self.buf = data[pos:]
        if events:
            c.frames += events
            c.last_frame_ns = time.monotonic_ns()

    def _control(self, payload: bytes) -> None:
        try:
            frame = parse_server_frame(payload)
        except FrameError as exc:
            self.c.errors += 1
            self.c.note(f"not a frame ({exc}): {payload[:80]!r}")
            return
        if isinstance(frame, Subscribed):
            if not self.subscribed:
                self.subscribed = True
                self.cursor.reset(frame.seq)
                self.c.subscribed += 1
                if not self.ready.done():
                    self.ready.set_result(None)
        elif isinstance(frame, Error):
            self.c.errors += 1
            self.c.note(f"error frame: {frame.code}: {frame.message}")
            if frame.code == ErrorCode.SLOW_CONSUMER:
                self._mark_slow()
            elif not self.ready.done():
                self._fail(f"error frame: {frame.code}: {frame.message}")

    def _closed_by_server(self, payload: bytes) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        self.c.close_codes[code] += 1
        if code == CloseCode.SLOW_CONSUMER:
            self._mark_slow()
        self._send(0x8, payload[:2])
        assert self.transport is not None
        self.transport.close()

    def _mark_slow(self) -> None:
        if not self.slow:
            self.slow = True
            self.c.slow += 1

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(masked_frame(opcode, payload))

    def _fail(self, reason: str) -> None:
        self.c.note(reason)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.abort()


# Engine.IO v4 packet types (the first character of each WebSocket text frame) and Socket.IO v5
# packet types (the next one, in a MESSAGE).
EIO_OPEN, EIO_PING, EIO_PONG, EIO_MESSAGE = b"0", b"2", b"3", b"4"
SIO_CONNECT, SIO_DISCONNECT, SIO_EVENT = b"0", b"1", b"2"


def socketio_event(name: str, data: object) -> bytes:
    """The text of a Socket.IO event `name` with one argument, in the default namespace."""
    return EIO_MESSAGE + SIO_EVENT + json.dumps([name, data], separators=(",", ":")).encode()


def socketio_event_prefix(name: str) -> bytes:
    """How the text of a Socket.IO event `name` begins, up to its first argument."""
    return socketio_event(name, None)[: -len(b"null]")]


class SocketIOClient(WsClient):
    """One subscriber through python-socketio: `GET /socket.io/?EIO=4&transport=websocket`,
    open packet `0{...}`, connect `40` / `40{...}`, then the Socket.IO event `subscribe` with
    the topic; the server answers with the event `subscribed` carrying the product's
    `subscribed` frame, and sends each event as the event `event` carrying the product's event
    frame. Engine.IO pings (`2`) are answered with `3`."""

    PATH = "/socket.io/?EIO=4&transport=websocket"
    EVENT_PREFIX = socketio_event_prefix(FrameType.EVENT.value) + EVENT_FRAME_PREFIX.encode()
    EVENT_TAIL = 2  # `}]`
    SUBSCRIBED_PREFIX = socketio_event_prefix(FrameType.SUBSCRIBED.value)

    def _upgraded(self) -> None:
        pass  # the server speaks first: its open packet

    def _control(self, payload: bytes) -> None:
        if payload == EIO_PING:
            self._send(0x1, EIO_PONG)
        elif payload.startswith(self.SUBSCRIBED_PREFIX):
            super()._control(payload[len(self.SUBSCRIBED_PREFIX) : -1])
        elif payload.startswith(EIO_MESSAGE + SIO_CONNECT):
            self._send(0x1, socketio_event(FrameType.SUBSCRIBE.value, self.topic.name))
        elif payload.startswith(EIO_OPEN):
            self._send(0x1, EIO_MESSAGE + SIO_CONNECT)
        else:
            self.c.errors += 1
            self.c.note(f"unexpected Socket.IO packet: {payload[:80]!r}")
            if payload.startswith(EIO_MESSAGE + SIO_DISCONNECT) and not self.ready.done():
                self._fail("the Socket.IO server refused the connection")


def client_class(server: str) -> type[WsClient]:
    """The client that speaks to `server` (pulse, floor or socketio)."""
    return SocketIOClient if server == "socketio" else WsClient


async def open_connections(
    client: type[WsClient],
    how_many: int,
    port: int,
    token: str,
    topic: str,
    counters: Counters,
    opened: list[WsClient],
    concurrency: int,
) -> None:
    """Open and subscribe `how_many` connections, `concurrency` handshakes at a time."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            for attempt in range(3):
                protocol: WsClient | None = None
                try:
                    async with asyncio.timeout(30):
                        _, protocol = await loop.create_connection(
                            lambda: client(counters, HOST, port, token, topic), HOST, port
                        )
                        opened.append(protocol)
                        await protocol.ready
                    return
                except (OSError, TimeoutError) as exc:
                    counters.note(f"connect attempt {attempt + 1}: {type(exc).__name__}: {exc}")
                    if protocol is not None and protocol.transport is not None:
                        protocol.transport.abort()
                    await asyncio.sleep(0.2 * (attempt + 1))
            counters.failed += 1

    await asyncio.gather(*(one() for _ in range(how_many)))


async def warm_up(
    client: type[WsClient], port: int, token: str, topic: str, how_many: int
) -> list[str]:
    """Open, subscribe and close a few connections, so lazy imports and pools are not counted;
    returns what went wrong (nothing when all subscribed)."""
    counters = Counters()
    clients: list[WsClient] = []
    try:
        async with asyncio.timeout(60):
            await open_connections(client, how_many, port, token, topic, counters, clients, 8)
    finally:
        for protocol in clients:
            if protocol.transport is not None:
                protocol.transport.abort()
    await asyncio.sleep(0.2)
    if counters.subscribed != how_many:
        return [f"{counters.subscribed}/{how_many} subscribed", *counters.messages]
    return []

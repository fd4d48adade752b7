"""Fan-out benchmark: N subscribers of one topic, fed through Redis and the real server.

    .venv/bin/python -m bench.fanout --subscribers 100,1000,10000
    .venv/bin/python -m bench.fanout --quick          # N=100 only, a few seconds
    .venv/bin/python -m bench.fanout --subscribers 10000 --server-metrics off   # metrics' cost

The path measured is the production one: this process publishes announcements on Redis
(`pulse_data.pubsub.encode_announcement`, channel `EVENTS_CHANNEL`, frames built with
`pulse_core.protocol.event_frame`, each event on both of its campaign's topics, as the workers do)
to an embedded redis-server; a real server process (`server.main.run_server`, a throwaway SQLite
database) listens, fans out, and writes WebSocket frames to N subscribers of `campaign:<id>`
held by separate client processes. The server is pinned to one core; clients, publisher and
Redis share the other. See bench/README.md for what each column means.

Everything this starts (server, Redis, client processes, a temp directory) is cleaned up on exit,
on errors and on Ctrl-C; every wait has a deadline, and every child has a lifetime limit and
dies with this process.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import ctypes
import hashlib
import http.client
import json
import math
import multiprocessing
import os
import platform
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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

REPO_ROOT = Path(__file__).resolve().parent.parent
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
EVENT_PREFIX = EVENT_FRAME_PREFIX.encode()
HOST = "127.0.0.1"

# Per client process: slots in a shared array of int64, written by the process every TICK.
S_FRAMES, S_MIN_SEQ, S_SUBSCRIBED, S_CLOSED, S_SLOW, S_GAPS, S_LAST_NS, S_ERRORS, S_FAILED = range(
    9
)
SLOTS = 10
# Control slots, written by the orchestrator.
C_STOP, C_REC_LO, C_REC_HI, C_DUMP = range(4)
NO_RECORDING = 1 << 62
TICK_SECONDS = 0.005  # how often a client process reports; 4x that with many connections
# Flood: at most this many frames in flight (published, not yet received), so that the
# drain after the last publish stays short even when the server is slow.
FLOOD_INFLIGHT_FRAMES = 50_000
SERVER_CHILD_CODE = "import bench.fanout as b; b._server_child()"
QUIET_BUSY_CORES = 0.25  # what "the machine is idle" means before each phase


class BenchError(RuntimeError):
    """The benchmark could not measure; the message says what went wrong."""


# --------------------------------------------------------------------------------------------
# Process helpers (Linux)


def _die_with_parent() -> None:
    """SIGTERM this process when its parent dies, so nothing outlives an interrupted run."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _raise_nofile(wanted: int) -> int:
    """Raise this process's open-file limit to `wanted` if it can; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    infinite = resource.RLIM_INFINITY
    for limits in ((wanted, max(hard, wanted) if hard != infinite else hard), (hard, hard)):
        if limits[0] == infinite:
            continue
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            break
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _core_busy_seconds() -> dict[int, float]:
    """Busy time of every core since boot (all processes), from /proc/stat."""
    busy = {}
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:
        for line in stat:
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                numbers = [int(value) for value in values]
                idle = numbers[3] + (numbers[4] if len(numbers) > 4 else 0)
                busy[int(name[3:])] = (sum(numbers[:8]) - idle) / tick
    return busy


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for process {pid}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _split_cores() -> tuple[int | None, set[int] | None]:
    """One core for the server, the rest for everyone else; (None, None) on a 1-core machine."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None, None
    if len(cores) < 2:
        return None, None
    return cores[0], set(cores[1:])


def _pin(pid: int, cores: set[int] | None) -> None:
    if cores:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cores)


def _lifetime_watchdog(seconds: float) -> None:
    """SIGTERM this process after `seconds`, and exit hard 15 s later: nothing runs forever."""

    def fire() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(15)
        os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


# --------------------------------------------------------------------------------------------
# The server child: `pulse server` with explicit settings, pinned to one core.


def _server_child() -> None:
    """Entry point of the server subprocess; its config is a JSON document in argv[1]."""
    config = json.loads(sys.argv[1])
    _die_with_parent()
    if config["core"] is not None:
        os.sched_setaffinity(0, {config["core"]})
    _raise_nofile(config["nofile"])
    _lifetime_watchdog(config["lifetime_seconds"])
    _install_gc_probe(config["gc_stats"])
    from pulse_core.config import Settings
    from server import main as server_main
    from server.main import run_server

    if config.get("gc_threshold"):  # an experiment: the server's own choice is the default
        server_main.GC_THRESHOLDS = tuple(config["gc_threshold"])

    settings = Settings(**config["settings"])
    if not config.get("profile"):
        run_server(settings)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        run_server(settings)
    finally:
        profiler.disable()
        profiler.dump_stats(config["profile"])


def _install_gc_probe(path: str) -> None:
    """Observe the server's garbage collections (it changes nothing): SIGUSR1 writes the counts
    and pause times per generation to `path`; SIGUSR2 runs `gc.freeze()` (an experiment)."""
    import gc

    # per generation: collections, CPU seconds, wall seconds, longest wall pause
    stats = {generation: [0, 0.0, 0.0, 0.0] for generation in range(3)}
    started = [0.0, 0.0]

    def observe(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
            started[1] = time.perf_counter()
            return
        pause = time.perf_counter() - started[1]
        entry = stats[info["generation"]]
        entry[0] += 1
        entry[1] += time.thread_time() - started[0]
        entry[2] += pause
        entry[3] = max(entry[3], pause)

    def dump(signum: int, frame: Any) -> None:
        snapshot = {
            "generations": {str(g): list(entry) for g, entry in stats.items()},
            "frozen": gc.get_freeze_count(),
            "counts": gc.get_count(),
        }
        for entry in stats.values():
            entry[3] = 0.0  # the longest pause is per snapshot
        with open(path + ".tmp", "w") as out:
            json.dump(snapshot, out)
        os.replace(path + ".tmp", path)

    def freeze(signum: int, frame: Any) -> None:
        gc.collect()
        gc.freeze()

    gc.callbacks.append(observe)
    signal.signal(signal.SIGUSR1, dump)
    signal.signal(signal.SIGUSR2, freeze)


# --------------------------------------------------------------------------------------------
# A minimal raw WebSocket client: handshake by hand, unmasked server frames parsed in place,
# client frames masked. About 2-5 µs per received frame (the `websockets` client costs 15-30).


def _masked_frame(opcode: int, payload: bytes) -> bytes:
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


class _Counters:
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


class _WsClient(asyncio.Protocol):
    def __init__(self, counters: _Counters, host: str, port: int, token: str, topic: str) -> None:
        self.c = counters
        key = base64.b64encode(os.urandom(16))
        self.accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        self.request = (
            f"GET /api/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
        self.subscribe = _masked_frame(1, encode(Subscribe(parse_topic(topic))).encode())
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
        assert self.transport is not None
        self.transport.write(self.subscribe)
        return True

    def _frames(self, data: bytes) -> None:
        c = self.c
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
                if data.startswith(EVENT_PREFIX, start):
                    at = data.find(b'"seq":', start, end) + 6
                    seq = int(data[at : data.find(b",", at, end)])
                    if self.cursor.on_event(seq) is not DELIVER:
                        c.gaps += 1  # a gap or a duplicate
                    events += 1
                    if c.rec_lo <= seq <= c.rec_hi:
                        if not now_ns:
                            now_ns = time.time_ns()
                        at = data.rfind(b'"sent_ns":', start, end) + 10
                        c.latencies.append(now_ns - int(data[at : end - 1]))
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
            self.transport.write(_masked_frame(opcode, payload))

    def _fail(self, reason: str) -> None:
        self.c.note(reason)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.abort()


async def _open_connections(
    how_many: int,
    port: int,
    token: str,
    topic: str,
    counters: _Counters,
    opened: list[_WsClient],
    concurrency: int,
) -> None:
    """Open and subscribe `how_many` connections, `concurrency` handshakes at a time."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            for attempt in range(3):
                client: _WsClient | None = None
                try:
                    async with asyncio.timeout(30):
                        _, client = await loop.create_connection(
                            lambda: _WsClient(counters, HOST, port, token, topic), HOST, port
                        )
                        opened.append(client)
                        await client.ready
                    return
                except (OSError, TimeoutError) as exc:
                    counters.note(f"connect attempt {attempt + 1}: {type(exc).__name__}: {exc}")
                    if client is not None and client.transport is not None:
                        client.transport.abort()
                    await asyncio.sleep(0.2 * (attempt + 1))
            counters.failed += 1

    await asyncio.gather(*(one() for _ in range(how_many)))


async def _client_async(
    index: int,
    how_many: int,
    port: int,
    token: str,
    topic: str,
    shm: Any,
    ctrl: Any,
    pipe: Any,
    lifetime_seconds: float,
    concurrency: int,
) -> None:
    loop = asyncio.get_running_loop()
    counters = _Counters()
    clients: list[_WsClient] = []
    base = index * SLOTS
    stop = asyncio.Event()
    started = time.monotonic()
    dump_seen = 0
    # the minimum over thousands of connections costs: report less often when there are many
    tick_seconds = min(4 * TICK_SECONDS, TICK_SECONDS * max(1.0, how_many / 500))

    def tick() -> None:
        nonlocal dump_seen
        shm[base + S_FRAMES] = counters.frames
        shm[base + S_SUBSCRIBED] = counters.subscribed
        shm[base + S_CLOSED] = counters.closed
        shm[base + S_SLOW] = counters.slow
        shm[base + S_GAPS] = counters.gaps
        shm[base + S_LAST_NS] = counters.last_frame_ns
        shm[base + S_ERRORS] = counters.errors
        shm[base + S_FAILED] = counters.failed
        shm[base + S_MIN_SEQ] = min(
            (
                client.cursor.seq or 0
                for client in clients
                if client.subscribed and not client.closed
            ),
            default=-1,
        )
        counters.rec_lo = ctrl[C_REC_LO]
        counters.rec_hi = ctrl[C_REC_HI]
        if ctrl[C_DUMP] != dump_seen:
            dump_seen = ctrl[C_DUMP]
            pipe.send(("latencies", dump_seen, counters.latencies.tobytes()))
            counters.latencies = array.array("q")
        if ctrl[C_STOP] or time.monotonic() - started > lifetime_seconds:
            stop.set()
            return
        loop.call_later(tick_seconds, tick)

    tick()
    opening = asyncio.create_task(
        _open_connections(how_many, port, token, topic, counters, clients, concurrency)
    )
    await stop.wait()
    opening.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await opening
    for client in clients:
        if client.transport is not None:
            client.transport.abort()
    pipe.send(
        (
            "bye",
            {
                "frames": counters.frames,
                "subscribed": counters.subscribed,
                "failed": counters.failed,
                "closed": counters.closed,
                "slow": counters.slow,
                "gaps": counters.gaps,
                "errors": counters.errors,
                "close_codes": dict(counters.close_codes),
                "messages": counters.messages,
            },
        )
    )


def _client_process(
    index: int,
    how_many: int,
    port: int,
    token: str,
    topic: str,
    shm: Any,
    ctrl: Any,
    pipe: Any,
    lifetime_seconds: float,
    concurrency: int,
) -> None:
    """Entry point of one client process (spawned): `how_many` subscribers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator stops us
    _die_with_parent()
    _raise_nofile(how_many + 64)
    args = (index, how_many, port, token, topic, shm, ctrl, pipe, lifetime_seconds, concurrency)
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_client_async(*args))
    except ImportError:
        asyncio.run(_client_async(*args))


class ClientFleet:
    """The client processes of one measurement, and their shared counters."""

    def __init__(
        self,
        n: int,
        per_process: int,
        port: int,
        token: str,
        topic: str,
        lifetime_seconds: float,
        cores: set[int] | None,
    ) -> None:
        context = multiprocessing.get_context("spawn")
        count = max(1, math.ceil(n / per_process))
        self.sizes = [n // count + (1 if i < n % count else 0) for i in range(count)]
        self.shm = context.RawArray("q", SLOTS * count)
        self.ctrl = context.RawArray("q", 4)
        self.ctrl[C_REC_LO] = NO_RECORDING
        self.pipes = []
        self.procs = []
        self.summaries: list[dict[str, Any]] = []
        concurrency = max(8, 64 // count)
        for index, size in enumerate(self.sizes):
            reader, writer = context.Pipe(duplex=False)
            proc = context.Process(
                target=_client_process,
                args=(index, size, port, token, topic, self.shm, self.ctrl, writer,
                      lifetime_seconds, concurrency),
                name=f"bench-clients-{index}",
                daemon=True,
            )  # fmt: skip
            proc.start()
            writer.close()
            assert proc.pid is not None
            _pin(proc.pid, cores)
            self.pipes.append(reader)
            self.procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs if proc.pid is not None]

    def total(self, slot: int) -> int:
        return int(sum(self.shm[i * SLOTS + slot] for i in range(len(self.procs))))

    def latest(self, slot: int) -> int:
        return int(max(self.shm[i * SLOTS + slot] for i in range(len(self.procs))))

    def min_seq(self) -> int:
        """The lowest seq that every live subscriber has received (-1: none is live)."""
        values = [self.shm[i * SLOTS + S_MIN_SEQ] for i in range(len(self.procs))]
        live = [value for value in values if value >= 0]
        return min(live) if live else -1

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.exitcode is not None:
                raise BenchError(f"client process {proc.name} exited with {proc.exitcode}")

    def latencies(self, timeout: float = 30.0) -> array.array[int]:
        """Every recorded latency (ns) since the last call, from every process."""
        self.ctrl[C_DUMP] += 1
        wanted = self.ctrl[C_DUMP]
        merged = array.array("q")
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not pipe.poll(left):
                    raise BenchError("a client process did not hand over its latencies")
                kind, dump, data = pipe.recv()
                if kind == "latencies" and dump == wanted:
                    merged.frombytes(data)
                    break
        return merged

    def stop(self) -> list[dict[str, Any]]:
        """Stop every client process; returns their final counters. Never raises."""
        self.ctrl[C_STOP] = 1
        deadline = time.monotonic() + 15
        for pipe in self.pipes:
            with contextlib.suppress(EOFError, OSError):
                while (left := deadline - time.monotonic()) > 0 and pipe.poll(left):
                    message = pipe.recv()
                    if message[0] == "bye":
                        self.summaries.append(message[1])
                        break
        for proc in self.procs:
            proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=3)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=3)
        for pipe in self.pipes:
            pipe.close()
        return self.summaries


# --------------------------------------------------------------------------------------------
# Orchestration: database, Redis, server, publisher


@dataclass
class Deployment:
    """What every measurement shares: the database, Redis and the subscriber's identity."""

    tmp: Path
    database_url: str
    redis_url: str
    redis_pid: int
    secret_key: str
    token: str
    campaign_id: int
    marketer_id: int
    server_core: int | None
    other_cores: set[int] | None


BENCH_SESSION = "bench-session"
BENCH_SESSION_HOURS = 2


def _make_database(path: Path) -> tuple[int, int, int]:
    """A throwaway SQLite database with one marketer, user (logged in), target and campaign."""

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from pulse_data.migrate import upgrade_database
    from pulse_data.models import AuthSession, Campaign, Marketer, Target, User

    upgrade_database(f"sqlite:///{path}")
    engine = create_engine(f"sqlite:///{path}")
    try:
        with Session(engine) as session:
            marketer = Marketer(name="Bench Outdoor")
            session.add(marketer)
            session.flush()
            user = User(
                marketer_id=marketer.id,
                email="bench@bench.example",
                name="Bench",
                password_hash="!no-login",
            )
            target = Target(marketer_id=marketer.id, title="Bench target")
            session.add_all([user, target])
            session.flush()
            target.population_status = "populated"
            campaign = Campaign(
                marketer_id=marketer.id,
                target_id=target.id,
                title="Bench campaign",
                launched_at=datetime.now(UTC),
            )
            session.add(campaign)
            session.add(
                AuthSession(
                    id=BENCH_SESSION,
                    user_id=user.id,
                    expires_at=datetime.now(UTC) + timedelta(hours=BENCH_SESSION_HOURS),
                )
            )
            session.commit()
            return marketer.id, user.id, campaign.id
    finally:
        engine.dispose()


class EventSource:
    """Builds announcements exactly as the workers do: each event on both of its topics."""

    def __init__(self, campaign_id: int, marketer_id: int) -> None:
        from pulse_core.stats import BandCount, CampaignStats
        from pulse_core.topics import topics_for_campaign

        self.campaign_id = campaign_id
        self.topic, self.marketer_topic = topics_for_campaign(campaign_id, marketer_id)
        self.seq = 0  # on the campaign topic, the one subscribed to
        self.marketer_seq = 0
        self.stats = CampaignStats(
            target_population=18_234,
            pending_offers=1_200,
            current_offers=5_406,
            completed_offers=312,
            pending_spend=1_234.5,
            spend_to_date=5_678.9,
            balance=43_210.55,
            unique_reach=4_021,
            banner_views=10_234,
            text_jumps=812,
            bands=(
                BandCount(band_id=11, level=0, name="Bullseye", population=4_120),
                BandCount(band_id=12, level=1, name="Ring 1", population=6_100),
                BandCount(band_id=13, level=2, name="Ring 2", population=8_014),
            ),
        ).to_wire()

    def announcement(self, events: int = 1) -> str:
        from pulse_core.names import EventName, UpdateReason
        from pulse_core.protocol import event_frame, utc_now_iso
        from pulse_data.eventlog import RecordedEvent
        from pulse_data.pubsub import encode_announcement

        recorded = []
        for _ in range(events):
            self.seq += 1
            self.marketer_seq += 1
            self.stats["banner_views"] += 1
            self.stats["spend_to_date"] = round(self.stats["spend_to_date"] + 0.35, 2)
            self.stats["balance"] = round(self.stats["balance"] - 0.35, 2)
            ts = utc_now_iso()
            extra = {"reason": UpdateReason.AD_ACTIVITY.value, "sent_ns": time.time_ns()}
            for topic, seq in ((self.topic, self.seq), (self.marketer_topic, self.marketer_seq)):
                frame = event_frame(
                    topic=topic,
                    seq=seq,
                    event=EventName.CAMPAIGN_UPDATED,
                    campaign_id=self.campaign_id,
                    ts=ts,
                    stats=self.stats,
                    extra=extra,
                )
                recorded.append(RecordedEvent(id=0, topic=topic, seq=seq, frame=frame))
        return encode_announcement(recorded)

    def frame_bytes(self) -> int:
        """Size of one event frame on the subscribed topic (the payload each subscriber gets)."""
        data = json.loads(self.announcement_preview())
        return len(data[0][2].encode())

    def announcement_preview(self) -> str:
        saved = (self.seq, self.marketer_seq, dict(self.stats))
        try:
            return self.announcement()
        finally:
            self.seq, self.marketer_seq, self.stats = saved


class Publisher:
    def __init__(self, redis_url: str) -> None:
        import redis

        from pulse_core.names import EVENTS_CHANNEL

        self.channel = EVENTS_CHANNEL
        self.client = redis.Redis.from_url(redis_url)

    def publish(self, message: str) -> int:
        return int(self.client.publish(self.channel, message))  # type: ignore[arg-type]

    def close(self) -> None:
        self.client.close()


class ServerProcess:
    def __init__(
        self,
        deployment: Deployment,
        port: int,
        n: int,
        log_path: Path,
        profile: Path | None,
        gc_threshold: tuple[int, int, int] | None,
        metrics: bool = True,
    ) -> None:
        settings = {
            "data_dir": str(deployment.tmp),
            "database_url": deployment.database_url,
            "redis_url": deployment.redis_url,
            "secret_key": deployment.secret_key,
            "host": HOST,
            "port": port,
            "metrics_enabled": metrics,
        }
        config = {
            "settings": settings,
            "core": deployment.server_core,
            "nofile": n + 512,
            "lifetime_seconds": 1800,
            "profile": str(profile) if profile else None,
            "gc_stats": str(log_path.with_suffix(".gc.json")),
            "gc_threshold": gc_threshold,
        }
        self.gc_path = log_path.with_suffix(".gc.json")
        env = {key: value for key, value in os.environ.items() if not key.startswith("PULSE_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.port = port
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVER_CHILD_CODE, json.dumps(config)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the orchestrator only; it stops us in order
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"the server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = _http_get(self.port, "/readyz")
                if status == 200:
                    return
            time.sleep(0.1)
        raise BenchError(f"the server was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def gc_snapshot(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The server's GC counters so far (see `_install_gc_probe`); None if it did not answer."""
        self.gc_path.unlink(missing_ok=True)
        if self.process.poll() is not None:
            return None
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ValueError):
                snapshot: dict[str, Any] = json.loads(self.gc_path.read_text())
                return snapshot
            time.sleep(0.005)
        return None

    def freeze_gc(self) -> None:
        """Experiment: make the server run `gc.collect(); gc.freeze()` now."""
        self.process.send_signal(signal.SIGUSR2)

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def log_count(self, text: str) -> int:
        self.log.flush()
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace").count(text)
        return 0

    def stop(self) -> None:
        """SIGTERM (uvicorn shuts down cleanly, a profile gets written), then SIGKILL."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.log.close()


def _http_get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _scrape(port: int) -> dict[str, float]:
    """The server's `/metrics`, parsed: {sample: value}, a labelled sample keyed `name{le=...}`
    by its `le` only (the only label the broadcast histogram has); {} when metrics are off."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = _http_get(port, "/metrics")
    if status != 200:
        return {}
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            le = sample.labels.get("le")
            samples[f"{sample.name}{{le={le}}}" if le else sample.name] = sample.value
    return samples


def _histogram_quantiles(
    before: dict[str, float], after: dict[str, float], name: str, fractions: Sequence[float]
) -> tuple[int, list[float | None]]:
    """Observations of histogram `name` between two scrapes, and their quantiles in seconds,
    interpolated in their bucket as Prometheus's histogram_quantile does."""
    prefix = f"{name}_bucket{{le="
    buckets = sorted(
        (math.inf if key[len(prefix) : -1] == "+Inf" else float(key[len(prefix) : -1]),
         after[key] - before.get(key, 0.0))
        for key in after
        if key.startswith(prefix)
    )  # fmt: skip
    total = buckets[-1][1] if buckets else 0.0
    quantiles: list[float | None] = []
    for fraction in fractions:
        if not total:
            quantiles.append(None)
            continue
        rank, lower, below = fraction * total, 0.0, 0.0
        for bound, cumulative in buckets:
            if cumulative >= rank:
                inside = cumulative - below
                share = (rank - below) / inside if inside else 1.0
                quantiles.append(lower if math.isinf(bound) else lower + (bound - lower) * share)
                break
            lower, below = bound, cumulative
    return int(total), quantiles


def _wait_until(
    condition: Callable[[], bool], timeout: float, what: str, check: Callable[[], None]
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        check()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.001)


async def _warm_up(port: int, token: str, topic: str, how_many: int) -> None:
    """Open, subscribe and close a few connections, so lazy imports and pools are not counted."""
    counters = _Counters()
    clients: list[_WsClient] = []
    try:
        async with asyncio.timeout(60):
            await _open_connections(how_many, port, token, topic, counters, clients, 8)
    finally:
        for client in clients:
            if client.transport is not None:
                client.transport.abort()
    if counters.subscribed != how_many:
        raise BenchError(
            f"warm-up: {counters.subscribed}/{how_many} subscribed: {counters.messages}"
        )
    await asyncio.sleep(0.2)


@dataclass
class Options:
    flood_seconds: float
    paced_seconds: float
    paced_frames_per_second: int
    per_process: int
    window: int
    batch: int
    repeat: int
    quiet_wait_seconds: float
    gc_threshold: tuple[int, int, int] | None
    freeze_gc: bool
    profile_dir: Path | None
    server_metrics: bool = True


@dataclass
class Result:
    n: int
    flood_frames_per_second: float = 0.0
    server_cpu_us_per_frame: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    kb_per_connection: float = 0.0
    flood: dict[str, Any] = field(default_factory=dict)
    paced: dict[str, Any] = field(default_factory=dict)
    flood_runs: list[dict[str, Any]] = field(default_factory=list)
    paced_runs: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    server_metrics: dict[str, Any] = field(default_factory=dict)


def _percentile(ordered: Sequence[int], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


def _side_cpu(fleet: ClientFleet, deployment: Deployment) -> float:
    """CPU seconds of everything but the server: clients, Redis, this process."""
    total = _cpu_seconds(os.getpid()) + _cpu_seconds(deployment.redis_pid)
    for pid in fleet.pids:
        with contextlib.suppress(OSError):
            total += _cpu_seconds(pid)
    return total


def _gc_delta(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """Collections and pause time per generation between two snapshots."""
    if not before or not after:
        return {}
    delta = {}
    for generation, (count, cpu, wall, longest) in after["generations"].items():
        count_before, cpu_before, wall_before, _ = before["generations"][generation]
        delta[f"gen{generation}"] = {
            "collections": count - count_before,
            "cpu_ms": round((cpu - cpu_before) * 1000, 1),
            "wall_ms": round((wall - wall_before) * 1000, 1),
            "longest_pause_ms": round(longest * 1000, 1),
        }
    return delta


def _gc_seconds(delta: dict[str, Any]) -> float:
    """CPU seconds the server spent collecting garbage."""
    return float(sum(entry["cpu_ms"] for entry in delta.values())) / 1000


def _foreign_load(
    before: dict[int, float], server_cpu: float, side_cpu: float, deployment: Deployment
) -> tuple[float, float]:
    """CPU seconds that processes outside this benchmark took on the server core and on the
    other cores since `before` (other work on a shared machine makes the figures worse)."""
    after = _core_busy_seconds()
    used = {core: after[core] - before.get(core, after[core]) for core in after}
    if deployment.server_core is None:
        return 0.0, max(0.0, sum(used.values()) - server_cpu - side_cpu)
    on_server = used.get(deployment.server_core, 0.0) - server_cpu
    on_clients = sum(used.get(core, 0.0) for core in deployment.other_cores or ()) - side_cpu
    return max(0.0, on_server), max(0.0, on_clients)


def _drain(fleet: ClientFleet, seq: int, server: ServerProcess, timeout: float) -> None:
    def check() -> None:
        fleet.check_alive()
        if server.process.poll() is not None:
            raise BenchError(f"the server died:\n{server.log_tail()}")

    _wait_until(lambda: fleet.min_seq() >= seq, timeout, f"delivery of seq {seq}", check)


def _flood(
    fleet: ClientFleet,
    server: ServerProcess,
    publisher: Publisher,
    source: EventSource,
    deployment: Deployment,
    n: int,
    options: Options,
) -> dict[str, Any]:
    """Publish as fast as the server delivers, at most `window` events ahead of the slowest."""
    window = max(2, min(options.window, FLOOD_INFLIGHT_FRAMES // n))
    gc_before = server.gc_snapshot()
    frames_before = fleet.total(S_FRAMES)
    server_cpu_before = _cpu_seconds(server.pid)
    side_cpu_before = _side_cpu(fleet, deployment)
    cores_before = _core_busy_seconds()
    first_seq = source.seq + 1
    started_ns = time.monotonic_ns()
    stop_publishing = time.monotonic() + options.flood_seconds
    waits = 0
    while time.monotonic() < stop_publishing:
        if source.seq - fleet.min_seq() >= window:
            waits += 1
            time.sleep(0.001)
            continue
        receivers = publisher.publish(source.announcement(options.batch))
        if receivers != 1:
            raise BenchError(f"the announcement reached {receivers} Redis subscribers, not 1")
    published_ns = time.monotonic_ns()
    _drain(fleet, source.seq, server, timeout=120)
    ended_ns = fleet.latest(S_LAST_NS)
    server_cpu = _cpu_seconds(server.pid) - server_cpu_before
    side_cpu = _side_cpu(fleet, deployment) - side_cpu_before
    others = _foreign_load(cores_before, server_cpu, side_cpu, deployment)
    gc = _gc_delta(gc_before, server.gc_snapshot())
    frames = fleet.total(S_FRAMES) - frames_before
    elapsed = (ended_ns - started_ns) / 1e9
    return {
        "events": source.seq - first_seq + 1,
        "frames": frames,
        "seconds": round(elapsed, 3),
        "publish_seconds": round((published_ns - started_ns) / 1e9, 3),
        "frames_per_second": round(frames / elapsed, 1),
        "server_cpu_seconds": round(server_cpu, 3),
        "server_cpu_us_per_frame": round(server_cpu / frames * 1e6, 2),
        "server_core_busy": round(server_cpu / elapsed, 3),
        "client_side_cpu_us_per_frame": round(side_cpu / frames * 1e6, 2),
        "client_core_busy": round(
            side_cpu / elapsed / max(1, len(deployment.other_cores or {0})), 3
        ),
        "window_events": window,
        "window_waits": waits,
        "server_gc_share_of_cpu": round(_gc_seconds(gc) / server_cpu, 3) if server_cpu else None,
        "server_gc": gc,
        "other_processes_on_server_core": round(others[0] / elapsed, 3),
        "other_processes_on_client_cores": round(others[1] / elapsed, 3),
    }


def _paced(
    fleet: ClientFleet,
    server: ServerProcess,
    publisher: Publisher,
    source: EventSource,
    deployment: Deployment,
    n: int,
    options: Options,
) -> dict[str, Any]:
    """Publish at `paced_frames_per_second / n` events/s and record every frame's latency."""
    rate = options.paced_frames_per_second / n
    count = max(10, round(rate * options.paced_seconds))
    backlog_limit = 512  # events; half the server's default send queue
    fleet.ctrl[C_REC_HI] = source.seq + count
    fleet.ctrl[C_REC_LO] = source.seq + 1
    time.sleep(40 * TICK_SECONDS)  # every client has read the window
    scrape_before = _scrape(server.port) if options.server_metrics else {}
    gc_before = server.gc_snapshot()
    frames_before = fleet.total(S_FRAMES)
    server_cpu_before = _cpu_seconds(server.pid)
    side_cpu_before = _side_cpu(fleet, deployment)
    cores_before = _core_busy_seconds()
    started = time.monotonic()
    started_ns = time.monotonic_ns()
    late_publishes = 0
    overloaded = False
    for i in range(count):
        due = started + i / rate
        while (left := due - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
        if -left > 0.005:
            late_publishes += 1
        give_up = time.monotonic() + 60
        while source.seq - fleet.min_seq() >= backlog_limit and time.monotonic() < give_up:
            overloaded = True
            time.sleep(0.001)
        publisher.publish(source.announcement(1))
    _drain(fleet, source.seq, server, timeout=120)
    ended_ns = fleet.latest(S_LAST_NS)
    server_cpu = _cpu_seconds(server.pid) - server_cpu_before
    side_cpu = _side_cpu(fleet, deployment) - side_cpu_before
    others = _foreign_load(cores_before, server_cpu, side_cpu, deployment)
    gc = _gc_delta(gc_before, server.gc_snapshot())
    frames = fleet.total(S_FRAMES) - frames_before
    elapsed = (ended_ns - started_ns) / 1e9
    # The server's own figure: one observation per event, on the subscriber written last.
    observed, (server_p50, server_p99) = _histogram_quantiles(
        scrape_before,
        _scrape(server.port) if options.server_metrics else {},
        "pulse_broadcast_latency_seconds",
        (0.50, 0.99),
    )
    fleet.ctrl[C_REC_LO] = NO_RECORDING
    fleet.ctrl[C_REC_HI] = 0
    time.sleep(40 * TICK_SECONDS)
    samples = sorted(fleet.latencies())
    ms = 1e-6
    return {
        "events_per_second": round(rate, 3),
        "events": count,
        "frames": frames,
        "seconds": round(elapsed, 3),
        "frames_per_second": round(frames / elapsed, 1),
        "server_cpu_us_per_frame": round(server_cpu / frames * 1e6, 2) if frames else None,
        "server_core_busy": round(server_cpu / elapsed, 3),
        "latency_samples": len(samples),
        "p50_ms": round(_percentile(samples, 0.50) * ms, 2),
        "p90_ms": round(_percentile(samples, 0.90) * ms, 2),
        "p99_ms": round(_percentile(samples, 0.99) * ms, 2),
        "p999_ms": round(_percentile(samples, 0.999) * ms, 2),
        "max_ms": round(samples[-1] * ms, 2) if samples else None,
        "server_histogram_events": observed,
        "server_histogram_p50_ms": None if server_p50 is None else round(server_p50 * 1000, 1),
        "server_histogram_p99_ms": None if server_p99 is None else round(server_p99 * 1000, 1),
        "late_publishes": late_publishes,
        # the server fell behind: the backlog limit was hit or it delivered under 90% of the rate
        "overloaded": overloaded or frames / elapsed < 0.9 * options.paced_frames_per_second,
        "server_gc_share_of_cpu": round(_gc_seconds(gc) / server_cpu, 3) if server_cpu else None,
        "server_gc": gc,
        "other_processes_on_server_core": round(others[0] / elapsed, 3),
        "other_processes_on_client_cores": round(others[1] / elapsed, 3),
    }


def measure(n: int, deployment: Deployment, options: Options, log: Callable[[str], None]) -> Result:
    result = Result(n=n)
    port = _free_port()
    profile = options.profile_dir / f"server-{n}.prof" if options.profile_dir else None
    server = ServerProcess(
        deployment,
        port,
        n,
        deployment.tmp / f"server-{n}.log",
        profile,
        options.gc_threshold,
        options.server_metrics,
    )
    fleet: ClientFleet | None = None
    publisher = Publisher(deployment.redis_url)
    source = EventSource(deployment.campaign_id, deployment.marketer_id)
    topic = source.topic
    try:
        server.wait_ready()
        asyncio.run(_warm_up(port, deployment.token, topic, min(20, n)))
        time.sleep(0.5)
        rss_before = _rss_kb(server.pid)
        log(f"N={n}: server pid {server.pid} ready, RSS {rss_before / 1024:.1f} MB; connecting")
        connect_started = time.monotonic()
        connect_cpu_before = _cpu_seconds(server.pid)
        fleet = ClientFleet(
            n, options.per_process, port, deployment.token, topic, 1500, deployment.other_cores
        )
        _fleet = fleet

        def check() -> None:
            _fleet.check_alive()
            if server.process.poll() is not None:
                raise BenchError(f"the server died:\n{server.log_tail()}")

        _wait_until(
            lambda: _fleet.total(S_SUBSCRIBED) + _fleet.total(S_FAILED) >= n,
            60 + n / 50,
            f"{n} subscribed connections",
            check,
        )
        if (failed := fleet.total(S_FAILED)) > 0:
            raise BenchError(f"{failed} of {n} connections could not subscribe (see messages)")
        connect_seconds = time.monotonic() - connect_started
        connect_cpu = _cpu_seconds(server.pid) - connect_cpu_before
        time.sleep(1.0)
        rss_after = _rss_kb(server.pid)
        result.memory = {
            "server_rss_before_kb": rss_before,
            "server_rss_after_kb": rss_after,
            "connect_seconds": round(connect_seconds, 2),
            "connect_server_cpu_ms_per_connection": round(connect_cpu / n * 1000, 2),
            "connect_server_core_busy": round(connect_cpu / connect_seconds, 3),
            "client_processes": len(fleet.procs),
        }
        result.kb_per_connection = round((rss_after - rss_before) / n, 1)
        if options.freeze_gc:
            server.freeze_gc()
            time.sleep(2.0)
        log(
            f"N={n}: {n} subscribed in {connect_seconds:.1f} s over {len(fleet.procs)} client "
            f"process(es); {result.kb_per_connection} KB per connection"
        )

        def ours() -> float:
            return _cpu_seconds(server.pid) + _side_cpu(_fleet, deployment)

        floods, paceds = [], []
        for run in range(options.repeat):
            _wait_quiet(options.quiet_wait_seconds, log, ours)
            floods.append(_flood(fleet, server, publisher, source, deployment, n, options))
            log(f"N={n}: flood {run + 1}/{options.repeat}: {_summary(floods[-1])}")
        for run in range(options.repeat):
            _wait_quiet(options.quiet_wait_seconds, log, ours)
            paceds.append(_paced(fleet, server, publisher, source, deployment, n, options))
            log(f"N={n}: paced {run + 1}/{options.repeat}: {_summary(paceds[-1])}")
        result.flood = min(floods, key=_foreign)
        result.paced = min(paceds, key=_foreign)
        result.flood_runs, result.paced_runs = floods, paceds
        result.flood_frames_per_second = result.flood["frames_per_second"]
        result.server_cpu_us_per_frame = result.flood["server_cpu_us_per_frame"]
        result.p50_ms = result.paced["p50_ms"]
        result.p99_ms = result.paced["p99_ms"]
        result.server_metrics = {
            name: value
            for name, value in _scrape(port).items()
            if name.startswith("pulse_") and "{" not in name
        }
        expected = source.seq
        live = n - fleet.total(S_CLOSED)
        result.checks = {
            "events_published": expected,
            "frame_bytes": source.frame_bytes(),
            "frames_received": fleet.total(S_FRAMES),
            "frames_expected": expected * n,
            "gaps_or_duplicates": fleet.total(S_GAPS),
            "slow_consumers": fleet.total(S_SLOW),
            "closed_early": n - live,
            "error_frames": fleet.total(S_ERRORS),
            "server_log_slow_consumer_lines": server.log_count("closing slow consumer"),
        }
    finally:
        if fleet is not None:
            summaries = fleet.stop()
            messages = [m for summary in summaries for m in summary.get("messages", [])]
            if messages:
                result.checks["client_messages"] = messages[:10]
        publisher.close()
        server.stop()
    if profile is not None and profile.exists():
        _print_profile(profile, log)
    return result


def _foreign(run: dict[str, Any]) -> float:
    """How much other processes ran on our cores during a run (the lower, the cleaner)."""
    return float(run["other_processes_on_server_core"] + run["other_processes_on_client_cores"])


def _summary(run: dict[str, Any]) -> str:
    parts = [f"{run['frames_per_second']:,.0f} frames/s",
             f"server {run['server_cpu_us_per_frame']} CPU µs/frame"]  # fmt: skip
    if "p99_ms" in run:
        parts.append(f"p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms")
    if run.get("server_histogram_p99_ms") is not None:
        parts.append(
            f"server histogram p50 {run['server_histogram_p50_ms']} ms, "
            f"p99 {run['server_histogram_p99_ms']} ms"
        )
    if run.get("server_gc_share_of_cpu") is not None:
        parts.append(f"GC {run['server_gc_share_of_cpu']:.0%} of server CPU")
    parts.append(
        f"other processes took {run['other_processes_on_server_core']:.0%} of the server core "
        f"and {run['other_processes_on_client_cores']:.0%} of the client core"
    )
    return "; ".join(parts)


def _wait_quiet(
    limit_seconds: float, log: Callable[[str], None], ours: Callable[[], float]
) -> None:
    """Wait (at most `limit_seconds`) until other processes leave the machine nearly idle: on a
    shared machine, other people's work on our cores makes every figure worse. `ours()` is the
    CPU time of the benchmark's own processes, which is not counted."""
    deadline = time.monotonic() + limit_seconds
    said = False
    while True:
        before, ours_before = _core_busy_seconds(), ours()
        time.sleep(0.5)
        after, ours_after = _core_busy_seconds(), ours()
        busy = sum(after[core] - before.get(core, after[core]) for core in after)
        busy = max(0.0, busy - (ours_after - ours_before)) / 0.5
        if busy < QUIET_BUSY_CORES:
            return
        if time.monotonic() > deadline:
            log(f"the machine is still busy ({busy:.2f} cores in use); measuring anyway")
            return
        if not said:
            log(f"waiting for a quieter machine ({busy:.2f} cores in use by other processes)")
            said = True


def _print_profile(path: Path, log: Callable[[str], None]) -> None:
    import io
    import pstats

    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("tottime").print_stats(25)
    log(f"server profile {path} (top 25 by own time):\n{out.getvalue()}")


# --------------------------------------------------------------------------------------------
# Report


def _cell(value: float, runs: Sequence[float], unit: str = "") -> str:
    """The reported run's value, and the range over all runs when there were several."""
    digits = 0 if value >= 100 or unit else 1
    text = f"{value:,.{digits}f}{unit}"
    if len(runs) > 1:
        text += f" ({min(runs):,.{digits}f}–{max(runs):,.{digits}f})"
    return text


def _table(results: Sequence[Result]) -> str:
    lines = [
        "| N | delivered frames/s (flood) | server CPU µs/frame | p50 ms | p99 ms "
        "(at 20k frames/s) | KB per connection |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        flood = [run["frames_per_second"] / 1000 for run in r.flood_runs]
        cpu = [run["server_cpu_us_per_frame"] for run in r.flood_runs]
        p50 = [run["p50_ms"] for run in r.paced_runs]
        p99 = [run["p99_ms"] for run in r.paced_runs]
        overloaded = " (overloaded)" if r.paced.get("overloaded") else ""
        lines.append(
            f"| {r.n:,} | {_cell(r.flood_frames_per_second / 1000, flood, 'k')} | "
            f"{_cell(r.server_cpu_us_per_frame, cpu)} | {_cell(r.p50_ms, p50)} | "
            f"{_cell(r.p99_ms, p99)}{overloaded} | {r.kb_per_connection:.0f} |"
        )
    lines += [
        "",
        "| N | server core busy (flood) | server GC share of its CPU (flood / paced) | "
        "other processes on server core (flood / paced) | "
        "client core busy (flood) | client-side µs/frame | paced frames/s | "
        "server CPU µs/frame (paced) | p99.9 ms | max ms | slow consumers | gaps | "
        "frames received / expected |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        f, p, c = r.flood, r.paced, r.checks
        lines.append(
            f"| {r.n:,} | {f.get('server_core_busy', 0):.0%} | "
            f"{f.get('server_gc_share_of_cpu') or 0:.0%} / "
            f"{p.get('server_gc_share_of_cpu') or 0:.0%} | "
            f"{f.get('other_processes_on_server_core', 0):.0%} / "
            f"{p.get('other_processes_on_server_core', 0):.0%} | "
            f"{f.get('client_core_busy', 0):.0%} | {f.get('client_side_cpu_us_per_frame')} | "
            f"{p.get('frames_per_second', 0):,.0f} | {p.get('server_cpu_us_per_frame')} | "
            f"{p.get('p999_ms')} | {p.get('max_ms')} | {c.get('slow_consumers')} | "
            f"{c.get('gaps_or_duplicates')} | {c.get('frames_received'):,} / "
            f"{c.get('frames_expected'):,} |"
        )
    if any(r.paced.get("server_histogram_events") for r in results):
        lines += [
            "",
            "| N | p50 / p99 ms, every frame (bench clients) | p50 / p99 ms, "
            "pulse_broadcast_latency_seconds (per event, last subscriber) | events observed |",
            "|---|---|---|---|",
        ]
        for r in results:
            p = r.paced
            lines.append(
                f"| {r.n:,} | {p.get('p50_ms')} / {p.get('p99_ms')} | "
                f"{p.get('server_histogram_p50_ms')} / {p.get('server_histogram_p99_ms')} | "
                f"{p.get('server_histogram_events')} |"
            )
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    versions = {}
    for name in ("uvicorn", "uvloop", "websockets", "fastapi", "starlette", "redis"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[name] = version(name)
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **versions,
    }


# --------------------------------------------------------------------------------------------
# Main


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description="Fan-out benchmark of the real server: Redis -> server -> N WebSockets.",
    )
    parser.add_argument(
        "--subscribers",
        default="100,1000,10000",
        help="comma-separated subscriber counts (default 100,1000,10000)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: N=100, short phases")
    parser.add_argument("--flood-seconds", type=float, default=3.0, help="flood publishing time")
    parser.add_argument("--paced-seconds", type=float, default=5.0, help="paced phase length")
    parser.add_argument(
        "--paced-rate",
        type=int,
        default=20_000,
        help="frames/s delivered in total in the paced phase (events/s = rate / N)",
    )
    parser.add_argument(
        "--per-process", type=int, default=2_000, help="connections per client process"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=256,
        help="flood: most events published ahead of the slowest subscriber (keep it well "
        "under the server's send queue of 1024 frames)",
    )
    parser.add_argument(
        "--batch", type=int, default=1, help="flood: events per Redis announcement (default 1)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each phase this many times and report the run least disturbed by other "
        "processes (use 3 on a shared machine)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="before each phase, wait up to this long for the machine to be nearly idle",
    )
    parser.add_argument(
        "--server-gc-threshold",
        metavar="G0,G1,G2",
        help="experiment: these GC thresholds in the server instead of server.main.GC_THRESHOLDS",
    )
    parser.add_argument(
        "--server-gc-freeze",
        action="store_true",
        help="experiment: gc.freeze() in the server once every subscriber is connected",
    )
    parser.add_argument(
        "--profile-server",
        type=Path,
        metavar="DIR",
        help="run the server under cProfile and write DIR/server-N.prof (slows it down)",
    )
    parser.add_argument(
        "--server-metrics",
        choices=("on", "off"),
        default="on",
        help="off: PULSE_METRICS_ENABLED=false in the server, to measure what metrics cost",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.subscribers = "100"
        args.flood_seconds = min(args.flood_seconds, 1.0)
        args.paced_seconds = min(args.paced_seconds, 2.0)
        args.quiet_wait = min(args.quiet_wait, 5.0)
    try:
        args.counts = [int(part) for part in args.subscribers.split(",") if part.strip()]
    except ValueError:
        parser.error("--subscribers takes numbers such as 100,1000,10000")
    if not args.counts or min(args.counts) < 1 or max(args.counts) > 50_000:
        parser.error("subscriber counts must be between 1 and 50,000")
    if not 1 <= args.window <= 1000 or not 1 <= args.batch <= 100:
        parser.error("--window must be 1..1000 and --batch 1..100")
    args.gc_threshold = None
    if args.server_gc_threshold:
        try:
            args.gc_threshold = tuple(int(part) for part in args.server_gc_threshold.split(","))
        except ValueError:
            args.gc_threshold = ()
        if len(args.gc_threshold) != 3:
            parser.error("--server-gc-threshold takes three numbers, e.g. 50000,20,100")
    if not 1 <= args.repeat <= 10 or not 0 <= args.quiet_wait <= 600:
        parser.error("--repeat must be 1..10 and --quiet-wait 0..600")
    if not 0.2 <= args.flood_seconds <= 60 or not 0.5 <= args.paced_seconds <= 120:
        parser.error("--flood-seconds must be 0.2..60 and --paced-seconds 0.5..120")
    return args


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    server_core, other_cores = _split_cores()
    if server_core is None:
        log("warning: fewer than 2 cores available; nothing is pinned and figures mix")
    else:
        _pin(0, other_cores)
    biggest = max(args.counts)
    limit = _raise_nofile(biggest + 512)
    if limit < biggest + 256:
        log(f"error: the open-file limit is {limit}; N={biggest} needs {biggest + 256}")
        return 2
    if args.profile_server:
        args.profile_server.mkdir(parents=True, exist_ok=True)
    options = Options(
        flood_seconds=args.flood_seconds,
        paced_seconds=args.paced_seconds,
        paced_frames_per_second=args.paced_rate,
        per_process=args.per_process,
        window=args.window,
        batch=args.batch,
        repeat=args.repeat,
        quiet_wait_seconds=args.quiet_wait,
        gc_threshold=args.gc_threshold,
        freeze_gc=args.server_gc_freeze,
        profile_dir=args.profile_server.resolve() if args.profile_server else None,
        server_metrics=args.server_metrics == "on",
    )

    results: list[Result] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="pulse-bench-") as tmp_name,
            contextlib.ExitStack() as stack,
        ):
            from pulse_cli.embedded_redis import EmbeddedRedis
            from server.security import issue_token

            tmp = Path(tmp_name)
            redis_server = EmbeddedRedis(tmp / "redis")
            stack.callback(redis_server.stop)
            redis_url = redis_server.start()
            assert redis_server.process is not None
            _pin(redis_server.process.pid, other_cores)
            database = tmp / "bench.sqlite3"
            marketer_id, user_id, campaign_id = _make_database(database)
            secret = secrets.token_urlsafe(48)
            token = issue_token(
                secret,
                user_id=user_id,
                marketer_id=marketer_id,
                email="bench@bench.example",
                session_id=BENCH_SESSION,
                expires_at=datetime.now(UTC) + timedelta(hours=BENCH_SESSION_HOURS),
            )
            deployment = Deployment(
                tmp=tmp,
                database_url=f"sqlite:///{database}",
                redis_url=redis_url,
                redis_pid=redis_server.process.pid,
                secret_key=secret,
                token=token,
                campaign_id=campaign_id,
                marketer_id=marketer_id,
                server_core=server_core,
                other_cores=other_cores,
            )
            log(
                f"server on core {server_core}, clients/publisher/Redis on {other_cores}; "
                f"frames of {EventSource(campaign_id, marketer_id).frame_bytes()} bytes"
            )
            for n in args.counts:
                results.append(measure(n, deployment, options, log))
    except KeyboardInterrupt:
        log("interrupted; everything started was stopped")
        return 130
    except BenchError as exc:
        log(f"error: {exc}")
        return 1

    print()
    print(_table(results))
    report = {"machine": _machine(), "options": _jsonable(asdict(options)),
              "results": [asdict(r) for r in results]}  # fmt: skip
    text = json.dumps(report, indent=2)
    print()
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


if __name__ == "__main__":
    sys.exit(main())

"""The client processes of one fan-out measurement: each holds ~2,000 raw WebSocket subscribers
(`bench.wsclient_raw`) and reports its counters every few milliseconds in a shared array."""

from __future__ import annotations

import array
import asyncio
import contextlib
import math
import multiprocessing
import signal
import time
from typing import Any

from bench.processes import BenchError, die_with_parent, pin, raise_nofile
from bench.wsclient_raw import NO_RECORDING, Counters, WsClient, client_class, open_connections

# Per client process: slots in a shared array of int64, written by the process every TICK.
S_FRAMES, S_MIN_SEQ, S_SUBSCRIBED, S_CLOSED, S_SLOW, S_GAPS, S_LAST_NS, S_ERRORS, S_FAILED = range(
    9
)
SLOTS = 10
# Control slots, written by the orchestrator.
C_STOP, C_REC_LO, C_REC_HI, C_DUMP = range(4)
TICK_SECONDS = 0.005  # how often a client process reports; 4x that with many connections


async def _client_async(
    index: int,
    how_many: int,
    port: int,
    token: str,
    topic: str,
    server: str,
    shm: Any,
    ctrl: Any,
    pipe: Any,
    lifetime_seconds: float,
    concurrency: int,
) -> None:
    loop = asyncio.get_running_loop()
    counters = Counters()
    clients: list[WsClient] = []
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
        open_connections(
            client_class(server), how_many, port, token, topic, counters, clients, concurrency
        )
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
    server: str,
    shm: Any,
    ctrl: Any,
    pipe: Any,
    lifetime_seconds: float,
    concurrency: int,
) -> None:
    """Entry point of one client process (spawned): `how_many` subscribers of `server` (pulse,
    floor or socketio)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator stops us
    die_with_parent()
    raise_nofile(how_many + 64)
    args = (
        index,
        how_many,
        port,
        token,
        topic,
        server,
        shm,
        ctrl,
        pipe,
        lifetime_seconds,
        concurrency,
    )
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
        server: str,
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
                args=(index, size, port, token, topic, server, self.shm, self.ctrl, writer,
                      lifetime_seconds, concurrency),
                name=f"bench-clients-{index}",
                daemon=True,
            )  # fmt: skip
            proc.start()
            writer.close()
            assert proc.pid is not None
            pin(proc.pid, cores)
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

"""What the fault tests drive the deployment with: resuming WebSocket clients and a producer.

`ResumingClient` is what a careful client does: it remembers the last `seq` of each topic and,
when its connection drops, reconnects (to the same server or another) and subscribes again
with `after`. It records every frame it gets, so a test can count duplicates and gaps. Frames,
the per-topic cursor and the retry decision come from `pulse_core.protocol`.

`Producer` commits events the way a worker does (`campaign_transaction`: stored with the change,
published on Redis after commit, left for the relay when Redis is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from pulse_core.names import UpdateReason
from pulse_core.protocol import (
    DUPLICATE,
    Backoff,
    Closed,
    Ending,
    Error,
    Event,
    FrameError,
    Gap,
    ReconnectPolicy,
    Refused,
    Resync,
    Retry,
    Subscribe,
    Subscribed,
    TopicCursor,
    Unreachable,
    encode,
    parse_server_frame,
)
from pulse_core.topics import parse_topic
from pulse_data.database import Database
from pulse_data.pubsub import EventPublisher, campaign_transaction

RECONNECT_DELAY_SECONDS = 0.2


def login(base_url: str, email: str, password: str = "pulse-demo") -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}/api/auth/login", json={"email": email, "password": password}, timeout=10
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def latency_of(frame: Event, received_at: float) -> float:
    sent = datetime.fromisoformat(frame.ts.replace("Z", "+00:00")).timestamp()
    return received_at - sent


@dataclass
class TopicLog:
    start_seq: int | None = None  # the seq the first subscription began after
    cursor: TopicCursor = field(default_factory=lambda: TopicCursor(0))
    received: list[int] = field(default_factory=list)
    duplicates: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (last seq had, seq got)
    resyncs: int = 0

    @property
    def last_seq(self) -> int:
        return self.cursor.seq or 0


class ResumingClient:
    """A WebSocket client that resumes each topic with `after` on whichever server answers."""

    def __init__(
        self,
        name: str,
        ws_urls: list[str],
        token: str,
        topics: list[str],
        *,
        switch_servers: bool,
        ssl_context: ssl.SSLContext | None = None,  # for wss:// URLs with a test certificate
    ) -> None:
        self.name = name
        self.ws_urls = ws_urls
        self.token = token
        self.tls: dict[str, Any] = {"ssl": ssl_context} if ssl_context is not None else {}
        self.topics = {topic: TopicLog() for topic in topics}
        self.switch_servers = switch_servers
        self.server_index = 0
        self.connections = 0
        self.disconnected_at: list[float] = []
        self.resumed_at: list[float] = []
        self.latencies: list[tuple[float, float]] = []  # (received at, latency)
        self.errors: list[Error | FrameError] = []
        self.gave_up: str | None = None  # why it stopped reconnecting (a fault test expects never)
        self.policy = ReconnectPolicy(
            Backoff(initial=RECONNECT_DELAY_SECONDS, factor=1.0, jitter=0.0)
        )
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"client-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def caught_up(self, heads: dict[str, int]) -> bool:
        return all(self.topics[topic].last_seq >= head for topic, head in heads.items())

    async def _run(self) -> None:
        while True:
            url = self.ws_urls[self.server_index]
            started = time.monotonic()
            ending = await self._connect(url)
            self.disconnected_at.append(time.time())
            self.subscribed.clear()
            decision = self.policy.decide(ending, lasted=time.monotonic() - started)
            if not isinstance(decision, Retry):
                self.gave_up = f"{decision} after {ending}"
                return
            if self.switch_servers:
                self.server_index = (self.server_index + 1) % len(self.ws_urls)
            await asyncio.sleep(decision.delay)

    async def _connect(self, url: str) -> Ending:
        try:
            return await self._session(url)
        except InvalidStatus as exc:
            return Refused(exc.response.status_code)
        except ConnectionClosed as exc:
            return Closed(exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else Closed(None)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            return Unreachable(str(exc) or type(exc).__name__)

    async def _session(self, url: str) -> Ending:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with asyncio.timeout(5):
            ws = await connect(
                url, additional_headers=headers, compression=None, open_timeout=5, **self.tls
            )
        async with ws:
            self.connections += 1
            for topic, log in self.topics.items():
                after = None if log.start_seq is None else log.last_seq
                await ws.send(encode(Subscribe(parse_topic(topic), after)))
            pending = set(self.topics)
            async for message in ws:
                received_at = time.time()
                try:
                    frame = parse_server_frame(message)
                except FrameError as exc:
                    self.errors.append(exc)
                    continue
                if isinstance(frame, Subscribed):
                    log = self.topics[frame.topic]
                    if log.start_seq is None:
                        log.start_seq = frame.seq
                        log.cursor.reset(frame.seq)
                    pending.discard(frame.topic)
                    if not pending:
                        self.subscribed.set()
                        if self.connections > 1:
                            self.resumed_at.append(received_at)
                elif isinstance(frame, Event):
                    self._on_event(frame, received_at)
                elif isinstance(frame, Resync):
                    log = self.topics[frame.topic]
                    log.resyncs += 1
                    log.cursor.reset(frame.seq)
                elif isinstance(frame, Error):
                    self.errors.append(frame)
        return Closed(ws.close_code, ws.close_reason or "")

    def _on_event(self, frame: Event, received_at: float) -> None:
        log = self.topics[frame.topic]
        had = log.last_seq
        step = log.cursor.on_event(frame.seq)
        if step is DUPLICATE:
            log.duplicates += 1
            return
        if isinstance(step, Gap):
            log.gaps.append((had, frame.seq))
        log.received.append(frame.seq)
        self.latencies.append((received_at, latency_of(frame, received_at)))


@dataclass
class Delivery:
    """What a set of clients got, against what was committed."""

    sent: int  # events committed on the watched topics while the clients listened
    expected: int  # deliveries owed: each client x each event on its topics
    delivered: int
    duplicated: int
    lost: int
    resyncs: int


def tally(
    clients: list[ResumingClient], heads: dict[str, int], heads_before: dict[str, int]
) -> Delivery:
    expected = delivered = duplicated = lost = resyncs = 0
    for client in clients:
        assert client.gave_up is None, f"{client.name} stopped reconnecting: {client.gave_up}"
        for topic, log in client.topics.items():
            assert log.start_seq is not None, f"{client.name} never subscribed to {topic}"
            owed = set(range(log.start_seq + 1, heads[topic] + 1))
            got = set(log.received)
            expected += len(owed)
            delivered += len(got & owed)
            lost += len(owed - got)
            duplicated += log.duplicates + len(log.received) - len(got)
            resyncs += log.resyncs
    sent = sum(heads[t] - heads_before[t] for t in heads)
    return Delivery(sent, expected, delivered, duplicated, lost, resyncs)


class Producer:
    """Commits `campaign_updated` events at a steady rate, the way a worker's job does."""

    def __init__(self, database_url: str, redis_url: str, campaign_id: int) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.campaign_id = campaign_id
        self.committed = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None
        self._db: Database | None = None
        self._redis: Redis | None = None
        self._stopping = asyncio.Event()

    def start(self, per_second: float, batch: int = 1) -> None:
        self._db = Database(self.database_url, pool_size=2)
        self._redis = Redis.from_url(self.redis_url, socket_connect_timeout=1, socket_timeout=2)
        self._task = asyncio.create_task(self._run(per_second, batch), name="producer")

    async def _run(self, per_second: float, batch: int) -> None:
        assert self._db is not None
        publisher = EventPublisher(self._db, self._redis)
        interval = batch / per_second
        next_at = time.monotonic()
        while not self._stopping.is_set():
            try:
                async with campaign_transaction(self._db, publisher) as events:
                    for _ in range(batch):
                        events.broadcast_campaign_updated(
                            self.campaign_id, reason=UpdateReason.AD_ACTIVITY
                        )
                self.committed += batch
            except Exception:
                self.failed += 1
            next_at += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(0.0, next_at - time.monotonic()))

    async def stop(self) -> None:
        """Stop between two transactions, as a worker finishes its job before it exits."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)
        if self._redis is not None:
            await self._redis.aclose()
        if self._db is not None:
            await self._db.dispose()


async def heads_of(database_url: str, topics: list[str]) -> dict[str, int]:
    from pulse_data import eventlog

    db = Database(database_url, pool_size=1)
    try:
        async with db.reader() as session:
            return {topic: await eventlog.head(session, topic) for topic in topics}
    finally:
        await db.dispose()


async def wait_for(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check` on the running loop; returns when it first held (time.time())."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.time()


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

"""Fan-out of event frames to WebSocket subscribers, per topic, in `seq` order.

Each event frame arrives already serialized and is handed as the same string to every
subscriber. Delivery never awaits a client: a frame goes into the connection's bounded queue,
and the connection's writer task sends it. A client whose queue fills up is a slow consumer:
it is told so and closed, and nobody else waits for it.

Per topic the hub keeps a `TopicCursor` at the last seq it delivered: a duplicate (the relay may
publish an event twice) is dropped, and a gap (two workers' publishes crossing) is filled from the
event log. Each subscription has a cursor too, so that live frames already sent by its replay are
not sent again.

With a latency sink, the broadcast latency of each event on each topic is measured on one
subscriber, the one queued last (so written last): from the frame's `ts` (its commit, to the
millisecond) to the moment its writer has sent it. Other subscribers pay one falsy check per frame.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pulse_core.names import CloseCode, ErrorCode
from pulse_core.protocol import DUPLICATE, Error, Gap, Resync, Subscribed, TopicCursor, encode
from pulse_data import eventlog
from pulse_data.database import Database
from pulse_data.eventlog import RecordedEvent

log = logging.getLogger(__name__)

REPLAY_PAGE = 500
SLOW_CLOSE_TIMEOUT_SECONDS = 2.0

SendText = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]
LatencySink = Callable[[float], None]
_TS_KEY = '"ts":"'
_TS_LENGTH = len("2025-01-31T12:00:00.000Z")


def committed_at(frame: str) -> float | None:
    """The Unix time in an event frame's `ts` (its first `ts` key: the event's own), or None."""
    start = frame.find(_TS_KEY)
    if start < 0:
        return None
    start += len(_TS_KEY)
    return _unix_time(frame[start : start + _TS_LENGTH])


@functools.lru_cache(maxsize=64)
def _unix_time(ts: str) -> float | None:
    """Cached: the events of one transaction, each on two topics, share their `ts`."""
    try:
        return datetime.fromisoformat(ts).timestamp()
    except ValueError:
        return None


class Connection:
    """One client: a bounded queue of frames and the task that writes them."""

    def __init__(self, send: SendText, close: Close, *, queue_limit: int, name: str = "") -> None:
        self.name = name
        self._send = send
        self._close = close
        self.queue_limit = queue_limit
        self.queue: deque[str] = deque()
        self.topics: set[str] = set()
        self.slow = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self.sent = 0
        # Frames of this connection whose broadcast latency is measured, oldest first (made
        # on the first one: an empty deque is 760 bytes, times every connection).
        self.probes: deque[tuple[str, float]] | None = None
        self.latency_sink: LatencySink | None = None

    def offer(self, frame: str) -> bool:
        """Queue a frame without waiting; a full queue marks the client a slow consumer."""
        if self.slow.is_set():
            return False
        if len(self.queue) >= self.queue_limit:
            self.queue.clear()
            self.probes = None
            self.slow.set()
            return False
        self.queue.append(frame)
        self._drained.clear()
        self._wakeup.set()
        return True

    async def put(self, frame: str) -> None:
        """Queue a frame, waiting while the queue is half full (for replays and replies)."""
        while len(self.queue) >= self.queue_limit // 2 and not self.slow.is_set():
            await self._drained.wait()
        self.offer(frame)

    async def run_writer(self) -> None:
        """Send queued frames until cancelled."""
        queue = self.queue
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while queue:
                frame = queue.popleft()
                await self._send(frame)
                self.sent += 1
                if self.probes and frame is self.probes[0][0]:
                    self._measured()
            self._drained.set()

    def _measured(self) -> None:
        assert self.probes is not None
        _, committed = self.probes.popleft()
        if self.latency_sink is not None:
            self.latency_sink(time.time() - committed)

    async def close_slow(self) -> None:
        """Tell a slow consumer why, and close it; gives up quickly if it reads nothing."""
        reason = "you were not reading events fast enough; reconnect and resume with 'after'"
        try:
            async with asyncio.timeout(SLOW_CLOSE_TIMEOUT_SECONDS):
                await self._send(encode(Error(ErrorCode.SLOW_CONSUMER, reason)))
                await self._close(CloseCode.SLOW_CONSUMER, "slow consumer")
        except (TimeoutError, OSError, RuntimeError):
            pass


@dataclass(slots=True)
class Subscription:
    """A connection's place on a topic: the last seq sent, and live frames held during replay."""

    cursor: TopicCursor = field(default_factory=lambda: TopicCursor(0))
    held: list[tuple[int, str]] | None = field(default_factory=list)


@dataclass(slots=True)
class TopicState:
    """A topic's subscribers, and the last seq delivered to them (None: not known yet)."""

    subscribers: dict[Connection, Subscription] = field(default_factory=dict)
    cursor: TopicCursor = field(default_factory=TopicCursor)


@dataclass(slots=True)
class HubStats:
    delivered_frames: int = 0
    duplicates_dropped: int = 0
    gaps_filled: int = 0
    slow_consumers: int = 0
    resyncs: int = 0


class Hub:
    """Topics and their subscribers in one server process."""

    def __init__(self, db: Database, latency_sink: LatencySink | None = None) -> None:
        self.db = db
        self.topics: dict[str, TopicState] = {}
        self.connections: set[Connection] = set()
        self.stats = HubStats()
        self.latency_sink = latency_sink

    @property
    def subscription_count(self) -> int:
        return sum(len(state.subscribers) for state in self.topics.values())

    def add(self, connection: Connection) -> None:
        connection.latency_sink = self.latency_sink
        self.connections.add(connection)

    def remove(self, connection: Connection) -> None:
        self.connections.discard(connection)
        for topic in list(connection.topics):
            self.unsubscribe(connection, topic)
        if connection.slow.is_set():
            self.stats.slow_consumers += 1

    def unsubscribe(self, connection: Connection, topic: str) -> bool:
        connection.topics.discard(topic)
        state = self.topics.get(topic)
        if state is None or state.subscribers.pop(connection, None) is None:
            return False
        if not state.subscribers:
            del self.topics[topic]
        return True

    async def subscribe(self, connection: Connection, topic: str, after: int | None) -> None:
        """Subscribe; replay stored events after `after`, then go live with no gap or duplicate."""
        self.unsubscribe(connection, topic)
        state = self.topics.setdefault(topic, TopicState())
        subscription = Subscription()
        state.subscribers[connection] = subscription
        connection.topics.add(topic)
        try:
            known = state.cursor.seq
            if known is not None and after in (None, known):
                # The hub follows this topic live: whatever comes after its last seq will be
                # delivered (or its gap filled) as it arrives, so the database has nothing to add.
                gone, latest, after = False, known, None
            else:
                async with self.db.reader() as session:
                    if after is None:
                        gone, latest = False, await eventlog.head(session, topic)
                    else:
                        gone, latest = await eventlog.history_gone(session, topic, after)
            if state.cursor.seq is None:
                state.cursor.reset(latest)
            await connection.put(encode(Subscribed(topic, latest)))
            if after is None:
                subscription.cursor.reset(latest)
            elif gone:
                self.stats.resyncs += 1
                subscription.cursor.reset(latest)
                await connection.put(encode(Resync(topic, latest)))
            else:
                subscription.cursor.reset(after)
                await self._replay(connection, subscription, topic)
            await self._release_held(connection, subscription, topic)
        except BaseException:
            self.unsubscribe(connection, topic)
            raise

    async def _replay(self, connection: Connection, subscription: Subscription, topic: str) -> None:
        while True:
            async with self.db.reader() as session:
                page = await eventlog.frames_after(
                    session, topic, subscription.cursor.seq or 0, REPLAY_PAGE
                )
            for event in page:
                await connection.put(event.frame)
                subscription.cursor.advance(event.seq)
            if len(page) < REPLAY_PAGE or connection.slow.is_set():
                return

    async def _release_held(
        self, connection: Connection, subscription: Subscription, topic: str
    ) -> None:
        """Send the live frames that arrived during the replay, then deliver directly."""
        cursor = subscription.cursor
        while subscription.held:
            held, subscription.held = subscription.held, []
            for seq, frame in sorted(held):
                step = cursor.check(seq)
                if step is DUPLICATE:
                    continue
                if isinstance(step, Gap):
                    await self._replay(connection, subscription, topic)
                    if cursor.check(seq) is DUPLICATE:
                        continue
                await connection.put(frame)
                cursor.advance(seq)
        subscription.held = None

    async def deliver(self, events: Iterable[tuple[str, int, str]]) -> None:
        """Deliver announced events (topic, seq, frame), filling gaps from the event log."""
        for topic, seq, frame in events:
            state = self.topics.get(topic)
            if state is None:
                continue
            step = state.cursor.check(seq)
            if step is DUPLICATE:
                self.stats.duplicates_dropped += 1
                continue
            if isinstance(step, Gap):
                await self._fill_gap(topic, step)
                state = self.topics.get(topic)
                if state is None or state.cursor.check(seq) is DUPLICATE:
                    continue
            self._fan_out(state, topic, seq, frame)

    async def _fill_gap(self, topic: str, gap: Gap) -> None:
        async with self.db.reader() as session:
            missing = await eventlog.frames_after(session, topic, gap.after, gap.count)
        self.stats.gaps_filled += 1
        for event in missing:
            state = self.topics.get(topic)
            if state is None:
                return
            if event.seq <= gap.last and state.cursor.check(event.seq) is not DUPLICATE:
                self._fan_out(state, topic, event.seq, event.frame)

    async def catch_up(self) -> int:
        """Deliver what the event log holds past each topic's last delivered seq."""
        delivered = 0
        for topic in list(self.topics):
            state = self.topics.get(topic)
            if state is None or state.cursor.seq is None:
                continue
            async with self.db.reader() as session:
                events: list[RecordedEvent] = await eventlog.frames_after(
                    session, topic, state.cursor.seq, 10_000
                )
            await self.deliver((event.topic, event.seq, event.frame) for event in events)
            delivered += len(events)
        return delivered

    def _fan_out(self, state: TopicState, topic: str, seq: int, frame: str) -> None:
        state.cursor.advance(seq)
        for connection, subscription in state.subscribers.items():
            if subscription.held is not None:
                subscription.held.append((seq, frame))
                if len(subscription.held) > connection.queue_limit:
                    connection.slow.set()
            elif subscription.cursor.on_event(seq) is not DUPLICATE:
                connection.offer(frame)
        self.stats.delivered_frames += len(state.subscribers)
        if self.latency_sink is not None and state.subscribers:
            self._probe(state, frame)

    @staticmethod
    def _probe(state: TopicState, frame: str) -> None:
        """Measure this frame's latency on the subscriber it was queued to last, if queued."""
        connection = next(reversed(state.subscribers))
        if connection.queue and connection.queue[-1] is frame:
            at = committed_at(frame)
            if at is not None:
                if connection.probes is None:
                    connection.probes = deque()
                connection.probes.append((frame, at))

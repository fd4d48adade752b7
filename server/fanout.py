"""Fan-out of event frames to WebSocket subscribers, per topic, in `seq` order.

Each event frame arrives already serialized; the hub builds its WebSocket frame (the bytes on
the wire) once and hands the same text and bytes to every subscriber. Delivery never awaits a
client: `offer` writes the bytes straight into the connection, or, on the fallback path, puts
the text into the connection's bounded queue. The frames of one delivery (an announcement: a
transaction's events, each on its topics) are gathered per subscriber and handed over together
(`offer_many`), one write for a client on several of those topics. A client that falls too far
behind is a slow consumer: it is told so and closed, and nobody else waits for it.

Per topic the hub keeps a `TopicCursor` at the last seq it delivered: a duplicate (the relay may
publish an event twice) is dropped, and a gap (two workers' publishes crossing) is filled from the
event log. A subscription that is replaying has a cursor too, so that live frames already sent
by its replay are not sent again; once it has caught up with the topic it has none.

With a latency sink, the broadcast latency of each event on each topic is measured on one
subscriber, the one written last: from the frame's `ts` (its commit, to the millisecond) to the
moment that subscriber's frame is written (or sent by its writer, on the fallback path).
"""

from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pulse_core.protocol import DUPLICATE, Gap, Resync, Subscribed, TopicCursor, encode
from pulse_data import eventlog
from pulse_data.database import Database
from pulse_data.eventlog import RecordedEvent

log = logging.getLogger(__name__)

REPLAY_PAGE = 500

LatencySink = Callable[[float], None]
_TS_KEY = '"ts":"'
_TS_LENGTH = len("2025-01-31T12:00:00.000Z")
_FIN_TEXT = 0x81
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def websocket_frame(text: str) -> bytes:
    """The bytes of one server-to-client WebSocket text frame (final, unmasked) holding `text`."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return _SHORT.pack(_FIN_TEXT, size) + payload
    if size < 1 << 16:
        return _MEDIUM.pack(_FIN_TEXT, 126, size) + payload
    return _LONG.pack(_FIN_TEXT, 127, size) + payload


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


class Subscriber(Protocol):
    """What the hub needs of a connection (`server.wssession.Session` and its adapters)."""

    topics: set[str]
    slow: bool

    @property
    def held_limit(self) -> int:
        """Live frames held for one subscription while its replay is sent, at most."""
        ...

    def offer(self, frame: str, wire: bytes) -> None:
        """Send a live frame without waiting (`wire`: the same frame as WebSocket bytes); a
        client too far behind is marked slow instead."""
        ...

    def offer_many(self, frames: list[tuple[str, bytes]]) -> None:
        """`offer` of several live frames, in order (a batch's frames for this client)."""
        ...

    async def put(self, frame: str) -> None:
        """Send a frame, waiting while the client is behind (replays and their replies)."""
        ...

    def mark_slow(self) -> None:
        """Close as a slow consumer, soon (never within the caller's loop)."""
        ...

    def probe(self, frame: str, committed: float, sink: LatencySink) -> None:
        """Report to `sink` how long after `committed` the just offered `frame` is written."""
        ...


@dataclass(slots=True)
class Subscription:
    """A replaying subscription's place on its topic: the last seq sent, and live frames held
    during the replay (None once they are sent)."""

    cursor: TopicCursor = field(default_factory=lambda: TopicCursor(0))
    held: list[tuple[int, str]] | None = field(default_factory=list)


@dataclass(slots=True)
class TopicState:
    """A topic's subscribers (None: caught up, delivered to directly), and the last seq
    delivered to them (None: not known yet)."""

    subscribers: dict[Subscriber, Subscription | None] = field(default_factory=dict)
    cursor: TopicCursor = field(default_factory=TopicCursor)


@dataclass(slots=True)
class HubStats:
    delivered_frames: int = 0
    duplicates_dropped: int = 0
    gaps_filled: int = 0
    slow_consumers: int = 0
    resyncs: int = 0
    # WebSocket frames built: one per event fanned out, however many subscribers it has.
    frames_encoded: int = 0
    # Hand-overs to subscribers: one per subscriber and batch of announcements, not per frame.
    offers: int = 0


class Hub:
    """Topics and their subscribers in one server process."""

    def __init__(self, db: Database, latency_sink: LatencySink | None = None) -> None:
        self.db = db
        self.topics: dict[str, TopicState] = {}
        self.connections: set[Subscriber] = set()
        self.stats = HubStats()
        self.latency_sink = latency_sink
        # During a batch: each subscriber's frames so far, and the latency probes to take once
        # they are handed over (see `deliver`).
        self._gathered: dict[Subscriber, list[tuple[str, bytes]]] | None = None
        self._probes: list[tuple[Subscriber, str, float]] = []

    @property
    def subscription_count(self) -> int:
        return sum(len(state.subscribers) for state in self.topics.values())

    def add(self, connection: Subscriber) -> None:
        self.connections.add(connection)

    def remove(self, connection: Subscriber) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        for topic in list(connection.topics):
            self.unsubscribe(connection, topic)
        if connection.slow:
            self.stats.slow_consumers += 1

    def unsubscribe(self, connection: Subscriber, topic: str) -> bool:
        connection.topics.discard(topic)
        state = self.topics.get(topic)
        if state is None or connection not in state.subscribers:
            return False
        del state.subscribers[connection]
        if not state.subscribers:
            del self.topics[topic]
        return True

    async def subscribe(self, connection: Subscriber, topic: str, after: int | None) -> None:
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
                async with self.db.lookup() as session:
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
            if state.subscribers.get(connection) is subscription:
                self.unsubscribe(connection, topic)
            raise
        # Caught up with the topic: live frames go straight out, with no cursor to check.
        topic_seq = state.cursor.seq
        if (
            state.subscribers.get(connection) is subscription
            and topic_seq is not None
            and (subscription.cursor.seq or 0) >= topic_seq
        ):
            state.subscribers[connection] = None

    async def _replay(self, connection: Subscriber, subscription: Subscription, topic: str) -> None:
        while True:
            async with self.db.lookup() as session:
                page = await eventlog.frames_after(
                    session, topic, subscription.cursor.seq or 0, REPLAY_PAGE
                )
            for event in page:
                await connection.put(event.frame)
                subscription.cursor.advance(event.seq)
            if len(page) < REPLAY_PAGE or connection.slow:
                return

    async def _release_held(
        self, connection: Subscriber, subscription: Subscription, topic: str
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
        """Deliver announced events (topic, seq, frame), filling gaps from the event log.

        The frames of several events are gathered per subscriber and handed over together at
        the end (and before any wait for the database), in the order they were delivered.
        """
        batch = list(events)
        if len(batch) > 1:
            self._gathered = {}
        try:
            for topic, seq, frame in batch:
                state = self.topics.get(topic)
                if state is None:
                    continue
                step = state.cursor.check(seq)
                if step is DUPLICATE:
                    self.stats.duplicates_dropped += 1
                    continue
                if isinstance(step, Gap):
                    gathering = self._gathered is not None
                    self._hand_over()
                    await self._fill_gap(topic, step)
                    if gathering:
                        self._gathered = {}
                    state = self.topics.get(topic)
                    if state is None or state.cursor.check(seq) is DUPLICATE:
                        continue
                self._fan_out(state, seq, frame)
        finally:
            self._hand_over()

    def _hand_over(self) -> None:
        """Give each subscriber the frames gathered for it, then take the latency probes."""
        gathered, self._gathered = self._gathered, None
        if gathered:
            for connection, frames in gathered.items():
                if len(frames) == 1:
                    connection.offer(*frames[0])
                else:
                    connection.offer_many(frames)
            self.stats.offers += len(gathered)
        if self._probes:
            probes, self._probes = self._probes, []
            sink = self.latency_sink
            for connection, frame, at in probes:
                if sink is not None:
                    connection.probe(frame, at, sink)

    async def _fill_gap(self, topic: str, gap: Gap) -> None:
        # `reader`, not `lookup`: live delivery never waits behind the clients' lookups.
        async with self.db.reader() as session:
            missing = await eventlog.frames_after(session, topic, gap.after, gap.count)
        self.stats.gaps_filled += 1
        for event in missing:
            state = self.topics.get(topic)
            if state is None:
                return
            if event.seq <= gap.last and state.cursor.check(event.seq) is not DUPLICATE:
                self._fan_out(state, event.seq, event.frame)

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

    def _fan_out(self, state: TopicState, seq: int, frame: str) -> None:
        """One event to every subscriber of its topic: its WebSocket frame is built once."""
        state.cursor.advance(seq)
        subscribers = state.subscribers
        if not subscribers:
            return
        wire = websocket_frame(frame)
        self.stats.frames_encoded += 1
        gathered = self._gathered
        for connection, subscription in subscribers.items():
            if subscription is not None:
                if subscription.held is not None:
                    subscription.held.append((seq, frame))
                    if len(subscription.held) > connection.held_limit:
                        connection.mark_slow()
                    continue
                if subscription.cursor.on_event(seq) is DUPLICATE:
                    continue
                subscribers[connection] = None  # caught up: its cursor is the topic's now
            if gathered is None:
                connection.offer(frame, wire)
            elif (frames := gathered.get(connection)) is None:
                gathered[connection] = [(frame, wire)]
            else:
                frames.append((frame, wire))
        self.stats.delivered_frames += len(subscribers)
        if gathered is None:
            self.stats.offers += len(subscribers)
        if self.latency_sink is not None:
            last = next(reversed(subscribers))
            if subscribers[last] is None and (at := committed_at(frame)) is not None:
                if gathered is None:
                    last.probe(frame, at, self.latency_sink)
                else:
                    self._probes.append((last, frame, at))

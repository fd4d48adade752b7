"""`/api/ws` on its two paths: uvicorn's own WebSocket protocol (server.ws_native, the one
that serves it with the pinned uvicorn and websockets) and the ASGI endpoint (server.ws, under
any other server); and the hub's frame, built once per event whatever the subscribers."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import cast

import pytest
import uvicorn
from redis.asyncio import Redis
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from pulse_cli.process import wait_ready
from pulse_core.config import Settings
from pulse_core.names import EVENTS_CHANNEL, CloseCode, ErrorCode
from pulse_core.protocol import TopicCursor
from pulse_data.database import Database
from pulse_data.eventlog import RecordedEvent
from pulse_data.pubsub import encode_announcement
from server import main, ws_native
from server.fanout import Hub, LatencySink, TopicState, websocket_frame
from server.listener import RedisListener
from server.main import uvicorn_config
from server.state import ServerState
from server.ws_native import NativeSession, PulseWebSocketProtocol
from tests.backend import ALICE, LiveBackend, ServerThread, free_port, wait_for
from tests.faults.clients import wait_for as wait_for_frames
from tests.test_fanout import (
    announce_as_read,
    first_active_campaign,
    padded_events,
    wait_metric,
)
from tests.wsclient import WsClient


class AsgiServerThread(ServerThread):
    """The server with uvicorn's plain WebSocket implementation: `/api/ws` goes through ASGI."""

    def start(self) -> None:
        self.server = uvicorn.Server(uvicorn_config(self.settings))
        self.server.config.ws = "websockets-sansio"
        self.server.config.log_level = "warning"
        self.thread = threading.Thread(target=self.server.run, name="test-server", daemon=True)
        self.thread.start()
        wait_ready(f"http://{self.settings.host}:{self.settings.port}", timeout=20)


@pytest.fixture
def asgi_backend(settings: Settings, demo_database_url: str) -> Iterator[LiveBackend]:
    settings = settings.model_copy(update={"port": free_port(), "database_url": demo_database_url})
    backend = LiveBackend(settings=settings, server=AsgiServerThread(settings))
    backend.server.start()
    try:
        yield backend
    finally:
        backend.server.stop()


def native_protocols(backend: LiveBackend) -> list[PulseWebSocketProtocol]:
    """The server's connections that the native path serves as `/api/ws` sessions."""
    assert backend.server.server is not None
    return [
        connection
        for connection in list(backend.server.server.server_state.connections)
        if isinstance(connection, PulseWebSocketProtocol) and connection.session is not None
    ]


async def subscribe_ping_event_and_slow_consumer(backend: LiveBackend) -> None:
    """The basic flow: subscribe, an event, ping; a client that stops reading is closed as a
    slow consumer while the other gets every event."""
    backend.settings.send_queue_frames = 256  # above the 5 events announced at once
    backend.settings.send_buffer_bytes = 64 * 1024
    topic = f"campaign:{await first_active_campaign(backend)}"
    token = backend.token(ALICE)
    healthy = await WsClient.open(backend.ws_url, token)
    stalled = await WsClient.open(backend.ws_url, token)
    head = (await healthy.subscribe(topic))["seq"]
    await stalled.subscribe(topic)
    await healthy.send(type="ping")
    assert await healthy.recv() == {"type": "pong"}

    total = 1_000
    events = padded_events(topic, head, total)
    redis = Redis.from_url(backend.settings.redis_url or "")
    try:
        await redis.publish(EVENTS_CHANNEL, encode_announcement(events[:1]))
        assert (await healthy.recv())["seq"] == head + 1
        assert (await stalled.recv())["seq"] == head + 1
        stalled.connection.transport.pause_reading()
        # 5 frames (40 KB) at a time: never more than the 64 KB allowance unread
        received = await announce_as_read(redis, healthy, events[1:], 5)
        await wait_metric(backend, "slow_consumers", 1)
    finally:
        await redis.aclose()
    assert received == list(range(head + 2, head + 1 + total))
    await healthy.send(type="ping")
    assert await healthy.recv() == {"type": "pong"}
    stalled.connection.transport.resume_reading()
    last = {}
    with pytest.raises(Exception):  # noqa: B017 - the closed socket raises ConnectionClosed
        while True:
            last = await stalled.recv(timeout=10)
    assert stalled.connection.close_code in (CloseCode.SLOW_CONSUMER, 1006)
    if stalled.connection.close_code == CloseCode.SLOW_CONSUMER:
        assert last.get("code") == ErrorCode.SLOW_CONSUMER
    await healthy.close()


async def test_the_native_path_serves_api_ws(live_backend: LiveBackend) -> None:
    """With the pinned uvicorn and websockets, `/api/ws` never goes through ASGI, and a
    connection at rest has no task of its own."""
    topic = f"campaign:{await first_active_campaign(live_backend)}"
    async with await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as ws:
        await ws.subscribe(topic)
        protocols = wait_for(lambda: native_protocols(live_backend))
        assert len(protocols) == 1
        session = protocols[0].session
        assert session is not None
        wait_for(lambda: session.task is None)
        assert session.topics == {topic}
    wait_for(lambda: not native_protocols(live_backend))


async def test_native_path_basic_flow(live_backend: LiveBackend) -> None:
    await subscribe_ping_event_and_slow_consumer(live_backend)


async def test_asgi_fallback_basic_flow(asgi_backend: LiveBackend) -> None:
    assert not native_protocols(asgi_backend)
    await subscribe_ping_event_and_slow_consumer(asgi_backend)


def test_a_uvicorn_without_what_the_native_path_uses_falls_back_to_asgi(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert isinstance(uvicorn_config(settings).ws, type)
    monkeypatch.setattr(
        ws_native, "missing_internals", lambda: ["uvicorn WebSocketsSansIOProtocol.shutdown"]
    )
    with caplog.at_level(logging.WARNING, logger="server.ws_native"):
        assert main.uvicorn_config(settings).ws == "websockets-sansio"
    assert "WebSocketsSansIOProtocol.shutdown" in caplog.text


class Recorder:
    """A subscriber that keeps what it is given."""

    def __init__(self) -> None:
        self.topics: set[str] = set()
        self.slow = False
        self.held_limit = 10
        self.wires: list[bytes] = []
        self.handed: list[int] = []  # how many frames each hand-over held

    def offer(self, frame: str, wire: bytes) -> None:
        self.wires.append(wire)
        self.handed.append(1)

    def offer_many(self, frames: list[tuple[str, bytes]]) -> None:
        self.wires.extend(wire for _, wire in frames)
        self.handed.append(len(frames))

    async def put(self, frame: str) -> None:
        raise AssertionError("no replay here")

    def mark_slow(self) -> None:
        self.slow = True

    def probe(self, frame: str, committed: float, sink: LatencySink) -> None:
        pass


async def test_an_events_frame_is_built_once_for_all_its_subscribers() -> None:
    hub = Hub(Database("sqlite+aiosqlite://"))
    subscribers = [Recorder() for _ in range(3)]
    topic = "campaign:1"
    hub.topics[topic] = TopicState(dict.fromkeys(subscribers), TopicCursor(5))
    frame = json.dumps({"type": "event", "topic": topic, "seq": 6})
    await hub.deliver([(topic, 6, frame), (topic, 6, frame)])  # the second is a duplicate
    assert hub.stats.frames_encoded == 1
    assert hub.stats.delivered_frames == 3
    first = subscribers[0].wires[0]
    assert all(s.wires == [first] and s.wires[0] is first for s in subscribers)
    await hub.db.dispose()


async def test_a_batchs_frames_reach_each_subscriber_in_one_hand_over_in_order() -> None:
    hub = Hub(Database("sqlite+aiosqlite://"))
    both, one = Recorder(), Recorder()
    topics = ["marketer:1:campaigns", "campaign:1"]
    hub.topics[topics[0]] = TopicState(dict.fromkeys([both, one]), TopicCursor(0))
    hub.topics[topics[1]] = TopicState(dict.fromkeys([both]), TopicCursor(0))
    events = [
        (topic, seq, json.dumps({"type": "event", "topic": topic, "seq": seq}))
        for seq in (1, 2)
        for topic in topics
    ]
    await hub.deliver(events)
    assert both.handed == [4] and one.handed == [2]
    assert hub.stats.offers == 2 and hub.stats.delivered_frames == 6
    assert both.wires == [websocket_frame(frame) for _, _, frame in events]
    await hub.deliver([*events[:1], (topics[0], 3, events[0][2])])  # a duplicate, then seq 3
    assert one.handed == [2, 1]
    await hub.db.dispose()


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 200_000])
def test_websocket_frames_parse_as_one_final_text_frame(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)
    reader = StreamReader()
    reader.feed_data(websocket_frame(text))
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as parsed:
        next(parser)
    frame: Frame = parsed.value.value
    assert (frame.opcode, frame.fin) == (Opcode.TEXT, True)
    assert bytes(frame.data).decode() == text


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


async def test_a_replay_waits_while_the_connection_takes_no_more() -> None:
    """Replayed frames (unlike live ones) wait while the transport is paused, in order."""
    protocol = object.__new__(PulseWebSocketProtocol)  # no socket: only its flow control
    protocol.loop = asyncio.get_running_loop()
    protocol.transport = transport = Transport()  # type: ignore[assignment]
    protocol.session = session = NativeSession(
        cast(ServerState, None), protocol, path="/api/ws", client="-", request_id="r"
    )
    protocol.pause_writing()
    replay = asyncio.create_task(session.put("first"))
    await asyncio.sleep(0)  # one turn of the loop: the replay is waiting, nothing written
    assert transport.written == [] and not replay.done()
    protocol.resume_writing()
    await replay
    await session.put("second")
    assert transport.written == [websocket_frame("first"), websocket_frame("second")]


TOPIC = "campaign:1"


def one_subscriber_listener(redis_url: str, db: Database) -> tuple[RedisListener, Recorder]:
    """A Redis listener whose hub has one subscriber of TOPIC, which has seen nothing yet."""
    hub = Hub(db)
    subscriber = Recorder()
    hub.topics[TOPIC] = TopicState(dict.fromkeys([subscriber]), TopicCursor(0))
    return RedisListener(redis_url, hub), subscriber


@asynccontextmanager
async def listening(listener: RedisListener) -> AsyncIterator[Redis]:
    """The listener running and subscribed; yields a Redis client to publish with."""
    running = asyncio.create_task(listener.run())
    redis = Redis.from_url(listener.redis_url)
    try:
        await asyncio.wait_for(listener.subscribed.wait(), 10)
        yield redis
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await redis.aclose()


def announcement(seq: int) -> tuple[str, str]:
    """An event of TOPIC at `seq`: its frame and the announcement that carries it."""
    frame = json.dumps({"type": "event", "topic": TOPIC, "seq": seq})
    return frame, encode_announcement([RecordedEvent(id=seq, topic=TOPIC, seq=seq, frame=frame)])


async def test_announcements_that_arrive_together_are_handed_over_together(
    redis_url: str, db: Database
) -> None:
    listener, subscriber = one_subscriber_listener(redis_url, db)
    async with listening(listener) as redis:
        announced = [announcement(seq) for seq in (1, 2, 3)]
        async with redis.pipeline(transaction=True) as publishing:  # sent and answered at once
            for _, data in announced:
                publishing.publish(EVENTS_CHANNEL, data)
            await publishing.execute()
        await wait_for_frames(lambda: len(subscriber.wires) == 3, 10, "the three frames")

    assert subscriber.wires == [websocket_frame(frame) for frame, _ in announced]
    assert subscriber.handed == [3]
    assert listener.health.messages == 3


async def test_after_a_long_delivery_announcements_a_moment_apart_are_handed_over_together(
    redis_url: str, db: Database
) -> None:
    listener, subscriber = one_subscriber_listener(redis_url, db)
    assert listener.linger_seconds() == 0  # nothing delivered yet: no waiting
    listener.health.last_delivery_seconds = 60.0  # as if the last delivery had taken a minute
    listener.linger_max_seconds = 1.0  # and waits of up to 1 s were allowed
    assert listener.linger_seconds() == 1.0
    async with listening(listener) as redis:
        announced = [announcement(seq) for seq in (1, 2)]
        for _, data in announced:
            await redis.publish(EVENTS_CHANNEL, data)
            await asyncio.sleep(0.05)  # apart: the listener has the first before the second
        await wait_for_frames(lambda: len(subscriber.wires) == 2, 10, "the two frames")

    assert subscriber.handed == [2]
    assert subscriber.wires == [websocket_frame(frame) for frame, _ in announced]
    assert listener.health.last_delivery_seconds < 1.0  # so the next one waits for none
    assert listener.linger_seconds() == 0

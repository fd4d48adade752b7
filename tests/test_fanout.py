"""Fan-out through the real path (Redis → server → WebSocket): order, gaps, duplicates,
slow consumers and Redis outages."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from pulse_cli.embedded_redis import EmbeddedRedis
from pulse_core.config import Settings
from pulse_core.names import EVENTS_CHANNEL, FrameType
from pulse_data.database import Database
from pulse_data.eventlog import RecordedEvent
from pulse_data.pubsub import EventPublisher, campaign_transaction, encode_announcement
from tests.backend import ALICE, LiveBackend, ServerThread, free_port, parse_metrics
from tests.wsclient import WsClient, events_of


@pytest.fixture
async def backend_db(live_backend: LiveBackend) -> AsyncIterator[Database]:
    database = Database(live_backend.settings.database_url or "")
    yield database
    await database.dispose()


def padded_events(topic: str, head: int, total: int) -> list[RecordedEvent]:
    """`total` events of `topic` after seq `head`, each frame padded to ~8 KB."""
    padding = "x" * 8_000
    return [
        RecordedEvent(
            id=0,
            topic=topic,
            seq=seq,
            frame=json.dumps({"type": "event", "topic": topic, "seq": seq, "pad": padding}),
        )
        for seq in range(head + 1, head + 1 + total)
    ]


async def announce_as_read(
    redis: Redis, reader: WsClient, events: list[RecordedEvent], batch: int
) -> list[int]:
    """Announce `events` `batch` at a time, each batch once `reader` has read the one before,
    and return the seqs it read. Such a reader has at most one batch unread, however busy the
    machine, so one smaller than the slow-consumer allowance is never closed as slow."""
    received: list[int] = []
    for start in range(0, len(events), batch):
        await redis.publish(EVENTS_CHANNEL, encode_announcement(events[start : start + batch]))
        while len(received) < min(start + batch, len(events)):
            frame = await reader.recv(timeout=30)
            assert frame.get("type") == FrameType.EVENT, frame
            received.append(frame["seq"])
    return received


async def first_active_campaign(backend: LiveBackend) -> int:
    with backend.client(ALICE) as alice:
        return int(
            next(c["id"] for c in alice.get("/api/campaigns").json() if c["state"] == "active")
        )


async def metric(backend: LiveBackend, name: str) -> int:
    """A hub counter (`duplicates_dropped` is `pulse_duplicates_dropped_total`) from /metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{backend.url}/metrics")).text
    return int(parse_metrics(text)[f"pulse_{name}_total"])


async def wait_metric(backend: LiveBackend, name: str, value: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while await metric(backend, name) < value:
            await asyncio.sleep(0.02)


async def test_gap_is_filled_from_the_log_and_duplicates_are_dropped(
    live_backend: LiveBackend, backend_db: Database
) -> None:
    campaign_id = await first_active_campaign(live_backend)
    topic = f"campaign:{campaign_id}"
    async with await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as ws:
        head = (await ws.subscribe(topic))["seq"]
        async with campaign_transaction(backend_db, publisher=None) as events:
            events.broadcast_campaign_updated(campaign_id)
            events.broadcast_campaign_updated(campaign_id)
        on_topic = [e for e in events.recorded if e.topic == topic]
        assert [e.seq for e in on_topic] == [head + 1, head + 2]
        redis = Redis.from_url(live_backend.settings.redis_url or "")
        try:
            await redis.publish(EVENTS_CHANNEL, encode_announcement(on_topic[1:]))
            frames = [await ws.recv(), await ws.recv()]
            await redis.publish(EVENTS_CHANNEL, encode_announcement(on_topic))
            await redis.publish(EVENTS_CHANNEL, "this is not an announcement")
        finally:
            await redis.aclose()
        await wait_metric(live_backend, "duplicates_dropped", 2)
        await ws.send(type="ping")
        assert await ws.recv() == {"type": "pong"}
    assert [f["seq"] for f in frames] == [head + 1, head + 2]
    assert [f["event"] for f in frames] == ["campaign_updated", "campaign_updated"]


async def test_joining_a_watched_topic_misses_nothing_that_was_not_yet_delivered(
    live_backend: LiveBackend, backend_db: Database
) -> None:
    """Clients that join (or resume on) a topic that others already watch, while an event is
    committed but not yet announced, still get it exactly once, in order."""
    campaign_id = await first_active_campaign(live_backend)
    topic = f"campaign:{campaign_id}"
    token = live_backend.token(ALICE)
    async with await WsClient.open(live_backend.ws_url, token) as watching:
        head = (await watching.subscribe(topic))["seq"]
        async with campaign_transaction(backend_db, publisher=None) as pending:
            pending.broadcast_campaign_updated(campaign_id)  # committed, announced later
        async with (
            await WsClient.open(live_backend.ws_url, token) as joining,
            await WsClient.open(live_backend.ws_url, token) as resuming,
        ):
            joined = (await joining.subscribe(topic))["seq"]
            await resuming.subscribe(topic, after=head)
            async with campaign_transaction(backend_db, publisher=None) as later:
                later.broadcast_campaign_updated(campaign_id)
            redis = Redis.from_url(live_backend.settings.redis_url or "")
            try:
                for batch in (pending, later):
                    on_topic = [e for e in batch.recorded if e.topic == topic]
                    await redis.publish(EVENTS_CHANNEL, encode_announcement(on_topic))
            finally:
                await redis.aclose()
            last = head + 2
            seen = {}
            for name, ws, since in (
                ("watching", watching, head),
                ("joining", joining, joined),
                ("resuming", resuming, head),
            ):
                frames = await ws.recv_until(lambda f: f.get("seq") == last)
                seen[name] = [f["seq"] for f in events_of(frames)]
                assert seen[name] == list(range(since + 1, last + 1)), name
    assert seen["watching"] == seen["resuming"] == [head + 1, head + 2]


async def test_slow_consumer_is_closed_and_others_get_every_event(
    live_backend: LiveBackend,
) -> None:
    live_backend.settings.send_queue_frames = 256
    live_backend.settings.send_buffer_bytes = 256 * 1024
    campaign_id = await first_active_campaign(live_backend)
    topic = f"campaign:{campaign_id}"
    token = live_backend.token(ALICE)
    healthy = await WsClient.open(live_backend.ws_url, token)
    stalled = await WsClient.open(live_backend.ws_url, token)
    head = (await healthy.subscribe(topic))["seq"]
    await stalled.subscribe(topic)
    stalled.connection.transport.pause_reading()

    total = 3_000  # 24 MB, more than the stalled socket's kernel buffers hold
    redis = Redis.from_url(live_backend.settings.redis_url or "")
    try:
        # 20 frames (160 KB) at a time: never more than the 256 KB allowance unread
        received = await announce_as_read(redis, healthy, padded_events(topic, head, total), 20)
        await wait_metric(live_backend, "slow_consumers", 1)
    finally:
        await redis.aclose()
    assert received == list(range(head + 1, head + 1 + total))
    stalled.connection.transport.resume_reading()
    with pytest.raises(Exception):  # noqa: B017 - the closed socket raises ConnectionClosed
        while True:
            await stalled.recv(timeout=10)
    assert stalled.connection.close_code in (4408, 1006)
    await healthy.close()


async def test_events_committed_while_redis_is_down_arrive_when_it_is_back(
    settings: Settings, live_backend: LiveBackend, backend_db: Database
) -> None:
    with tempfile.TemporaryDirectory(prefix="pulse-outage-") as directory:
        own_redis = EmbeddedRedis(Path(directory))
        own_redis.start()
        own = live_backend.settings.model_copy(
            update={"redis_url": own_redis.url, "port": free_port()}
        )
        server = ServerThread(own)
        server.start()
        base = f"http://{own.host}:{own.port}"
        campaign_id = await first_active_campaign(live_backend)
        topic = f"campaign:{campaign_id}"
        publisher_redis = Redis.from_url(own_redis.url)
        try:
            ws = await WsClient.open(
                f"ws://{own.host}:{own.port}/api/ws", live_backend.token(ALICE)
            )
            head = (await ws.subscribe(topic))["seq"]
            own_redis.stop()
            async with httpx.AsyncClient(base_url=base) as http:
                async with asyncio.timeout(10):
                    while (ready := await http.get("/readyz")).status_code != 503:
                        await asyncio.sleep(0.05)
                assert ready.json()["checks"]["event_listener"] != "ok"
                async with campaign_transaction(
                    backend_db, EventPublisher(backend_db, publisher_redis)
                ) as events:
                    events.broadcast_offers_created(campaign_id, 7)
                own_redis.start()
                frames = await ws.recv_until(lambda f: f.get("event") == "offers_created", 15)
                async with asyncio.timeout(10):
                    while (await http.get("/readyz")).status_code != 200:
                        await asyncio.sleep(0.05)
            assert [f["seq"] for f in events_of(frames)] == [head + 1]
            assert events_of(frames)[0]["count"] == 7
            await ws.close()
        finally:
            await publisher_redis.aclose()
            server.stop()
            own_redis.stop()

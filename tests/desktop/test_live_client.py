"""The WebSocket client: one subscription per topic, resume after reconnect, gaps, 4401."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from desktop.client.live import LinkState, LinkStatus, LiveClient
from desktop.client.models import EventFrame
from pulse_core.names import CloseCode
from pulse_core.protocol import Backoff

from .stub_ws import StubWsServer

TOPIC = "marketer:1:campaigns"
CAMPAIGN = "campaign:7"


class Recorder:
    def __init__(self) -> None:
        self.statuses: list[LinkStatus] = []
        self.events: list[EventFrame] = []
        self.subscribed: list[tuple[str, int, bool]] = []
        self.resyncs: list[str] = []
        self.expired = 0
        self.errors: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def _poke(self) -> None:
        self._changed.set()

    async def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        async def wait() -> None:
            while not condition():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def on_status(self, status: LinkStatus) -> None:
        self.statuses.append(status)
        self._poke()

    def on_subscribed(self, topic: str, seq: int, resumed: bool) -> None:
        self.subscribed.append((topic, seq, resumed))
        self._poke()

    def on_event(self, frame: EventFrame) -> None:
        self.events.append(frame)
        self._poke()

    def on_resync(self, topic: str) -> None:
        self.resyncs.append(topic)
        self._poke()

    def on_token_expired(self) -> None:
        self.expired += 1
        self._poke()

    def on_server_error(self, code: str, message: str, topic: str | None) -> None:
        self.errors.append((code, message))
        self._poke()

    def seqs(self, topic: str = TOPIC) -> list[int]:
        return [e.seq for e in self.events if e.topic == topic]

    @property
    def state(self) -> LinkState | None:
        return self.statuses[-1].state if self.statuses else None


@pytest.fixture
async def stub() -> AsyncIterator[StubWsServer]:
    server = StubWsServer()
    await server.start()
    yield server
    await server.stop()


async def start_client(
    stub: StubWsServer, token: str = "good", **options: Any
) -> tuple[LiveClient, Recorder, asyncio.Task[None]]:
    recorder = Recorder()

    async def history(topic: str, after: int) -> list[EventFrame]:
        return [EventFrame.from_wire(e, replayed=True) for e in stub.history(topic, after)]

    options.setdefault("fetch_history", history)
    client = LiveClient(
        stub.url, token, recorder, backoff=Backoff(initial=0.05, maximum=0.2), **options
    )
    task = asyncio.create_task(client.run())
    return client, recorder, task


async def stop_client(client: LiveClient, task: asyncio.Task[None]) -> None:
    await client.close()
    await asyncio.wait_for(task, 5)


def subscribes(stub: StubWsServer, topic: str) -> list[dict[str, Any]]:
    return [f for f in stub.received if f["type"] == "subscribe" and f["topic"] == topic]


async def test_one_subscribe_frame_per_topic_however_many_holders(stub: StubWsServer) -> None:
    client, rec, task = await start_client(stub)
    await client.subscribe(TOPIC)
    await client.subscribe(TOPIC)
    await client.subscribe(CAMPAIGN)
    await rec.until(lambda: len(rec.subscribed) == 2)
    await stub.publish(TOPIC)
    await rec.until(lambda: rec.seqs() == [1])
    assert len(subscribes(stub, TOPIC)) == 1
    await client.unsubscribe(CAMPAIGN)
    await client.unsubscribe(TOPIC)  # one holder left: nothing is sent
    await client.subscribe(CAMPAIGN)
    await rec.until(lambda: len(rec.subscribed) == 3)
    kinds = [(f["type"], f["topic"]) for f in stub.received if f["type"] != "ping"]
    assert kinds == [
        ("subscribe", TOPIC),
        ("subscribe", CAMPAIGN),
        ("unsubscribe", CAMPAIGN),
        ("subscribe", CAMPAIGN),
    ]
    assert client.topics == [TOPIC, CAMPAIGN]
    await stop_client(client, task)


async def test_reconnect_resumes_after_the_last_seq_without_loss_or_duplicates(
    stub: StubWsServer,
) -> None:
    client, rec, task = await start_client(stub)
    await client.subscribe(TOPIC)
    await rec.until(lambda: rec.subscribed != [])
    for _ in range(2):
        await stub.publish(TOPIC)
    await rec.until(lambda: rec.seqs() == [1, 2])
    await stub.drop_all()
    await rec.until(lambda: rec.state is LinkState.RECONNECTING)
    await stub.publish(TOPIC)  # missed while away
    await stub.publish(TOPIC)
    await rec.until(lambda: rec.seqs() == [1, 2, 3, 4])
    assert subscribes(stub, TOPIC)[-1]["after"] == 2
    assert rec.subscribed[-1] == (TOPIC, 4, True)
    reconnecting = [s for s in rec.statuses if s.state is LinkState.RECONNECTING]
    assert reconnecting and reconnecting[0].retry_in is not None and reconnecting[0].retry_in > 0
    await stop_client(client, task)


async def test_server_restart_on_the_same_port_is_survived(stub: StubWsServer) -> None:
    client, rec, task = await start_client(stub)
    await client.subscribe(TOPIC)
    await rec.until(lambda: rec.subscribed != [])
    await stub.publish(TOPIC)
    await rec.until(lambda: rec.seqs() == [1])
    port = stub.port
    await stub.stop()
    await rec.until(lambda: sum(s.state is LinkState.RECONNECTING for s in rec.statuses) >= 2)
    await stub.publish(TOPIC, deliver=False)
    await stub.start(port)
    await rec.until(lambda: rec.seqs() == [1, 2])
    assert rec.state is LinkState.CONNECTED
    await stop_client(client, task)


async def test_a_gap_is_filled_from_the_history_in_order(stub: StubWsServer) -> None:
    client, rec, task = await start_client(stub)
    await client.subscribe(TOPIC)
    await rec.until(lambda: rec.subscribed != [])
    await stub.publish(TOPIC)
    await stub.publish(TOPIC, deliver=False)
    await stub.publish(TOPIC, deliver=False)
    await stub.publish(TOPIC)
    await rec.until(lambda: len(rec.events) == 4)
    assert rec.seqs() == [1, 2, 3, 4]
    assert [e.replayed for e in rec.events] == [False, True, True, False]
    assert rec.resyncs == []
    await stop_client(client, task)


async def test_a_gap_the_history_no_longer_holds_asks_for_a_reload(stub: StubWsServer) -> None:
    client, rec, task = await start_client(stub)
    await client.subscribe(TOPIC)
    await rec.until(lambda: rec.subscribed != [])
    await stub.publish(TOPIC)
    await stub.publish(TOPIC, deliver=False)
    stub.pruned_upto[TOPIC] = 2
    await stub.publish(TOPIC)
    await rec.until(lambda: rec.resyncs == [TOPIC])
    await rec.until(lambda: rec.seqs() == [1, 3])
    await stop_client(client, task)


async def test_duplicates_and_late_frames_are_dropped(stub: StubWsServer) -> None:
    client, rec, task = await start_client(stub)
    await client.subscribe(TOPIC)
    await rec.until(lambda: rec.subscribed != [])
    first = await stub.publish(TOPIC)
    await stub.send_raw(TOPIC, first)
    await stub.publish(TOPIC)
    await rec.until(lambda: rec.seqs() == [1, 2])
    await asyncio.sleep(0)  # nothing else is in flight
    assert rec.seqs() == [1, 2]
    await stop_client(client, task)


async def test_resync_after_reconnect_when_the_missed_events_are_gone(stub: StubWsServer) -> None:
    client, rec, task = await start_client(stub)
    await client.subscribe(TOPIC)
    await rec.until(lambda: rec.subscribed != [])
    await stub.publish(TOPIC)
    await rec.until(lambda: rec.seqs() == [1])
    await stub.drop_all()
    for _ in range(5):
        await stub.publish(TOPIC, deliver=False)
    stub.pruned_upto[TOPIC] = 4
    await rec.until(lambda: rec.resyncs == [TOPIC])
    await stub.publish(TOPIC)
    await rec.until(lambda: rec.seqs() == [1, 7])
    assert client.last_seq(TOPIC) == 7
    await stop_client(client, task)


async def test_close_4401_stops_until_a_new_token_then_resumes(stub: StubWsServer) -> None:
    client, rec, task = await start_client(stub)
    await client.subscribe(TOPIC)
    await rec.until(lambda: rec.subscribed != [])
    await stub.publish(TOPIC)
    await rec.until(lambda: rec.seqs() == [1])
    stub.valid_tokens = {"fresh"}
    await stub.drop_all(CloseCode.UNAUTHORIZED)
    await rec.until(lambda: rec.expired == 1)
    assert rec.state is LinkState.OFFLINE
    connects = stub.connects
    await stub.publish(TOPIC, deliver=False)
    await asyncio.sleep(0.3)  # several backoff periods: it must not retry without a token
    assert stub.connects == connects
    client.set_token("fresh")
    await rec.until(lambda: rec.seqs() == [1, 2])
    assert rec.expired == 1
    await stop_client(client, task)


async def test_a_refused_upgrade_is_an_expired_token(stub: StubWsServer) -> None:
    client, rec, task = await start_client(stub, token="refuse")
    await client.subscribe(TOPIC)
    await rec.until(lambda: rec.expired == 1)
    assert rec.state is LinkState.OFFLINE
    await stop_client(client, task)


async def test_unreachable_server_reports_reconnecting_with_growing_delays() -> None:
    recorder = Recorder()
    client = LiveClient(
        "http://127.0.0.1:9", "good", recorder, backoff=Backoff(initial=0.02, maximum=0.1)
    )
    task = asyncio.create_task(client.run())
    await recorder.until(
        lambda: sum(s.state is LinkState.RECONNECTING for s in recorder.statuses) >= 3
    )
    failures = [s.failures for s in recorder.statuses if s.state is LinkState.RECONNECTING]
    assert failures[:3] == [1, 2, 3]
    assert recorder.statuses[-1].reason
    await stop_client(client, task)

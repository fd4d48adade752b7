"""A client that stops reading: its server sheds it with `slow_consumer` while its memory stays
bounded, and the other clients keep getting every event without waiting for it."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time

import httpx
import pytest

from pulse_core.names import CLOSE_SLOW_CONSUMER, ErrorCode
from pulse_core.protocol import Subscribe, encode
from pulse_core.topics import parse_topic
from tests.backend import parse_metrics
from tests.faults.clients import Producer, heads_of, percentile, tally, wait_for
from tests.faults.cluster import Cluster
from tests.faults.figures import record_delivery
from tests.faults.helpers import active_campaign, alice, clients_for

pytestmark = pytest.mark.faults

EVENTS_PER_SECOND = 400
BATCH = 40
PHASE_SECONDS = 2.0
MAX_RSS_GROWTH_KB = 64 * 1024
# The healthy clients' p99 while the stalled one is connected: under 1 s, or within 3x of their
# own p99 just before (a machine busy with other work slows both phases alike). A server that
# made the others wait for the stalled client would hold them for the seconds it takes to shed it.
MAX_HEALTHY_P99_SECONDS = 1.0
MAX_HEALTHY_P99_GROWTH = 3.0


class StalledClient:
    """A raw WebSocket client with a tiny receive buffer that subscribes, then reads nothing."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(5)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        response = b""
        while b"\r\n\r\n" not in response:
            response += self.sock.recv(1)
        assert response.startswith(b"HTTP/1.1 101"), response

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

    def drain(self, timeout: float = 10.0) -> bytes:
        """Everything the server sent, up to its close."""
        self.sock.settimeout(timeout)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(1 << 20)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        self.sock.close()
        return b"".join(chunks)


def close_code_of(stream: bytes) -> int | None:
    """The code of the close frame that ends a server's byte stream, if it ends with one."""
    position = stream.rfind(b"\x88")
    while position >= 0:
        length = stream[position + 1] & 0x7F
        if length >= 2 and position + 2 + length == len(stream):
            code: int = struct.unpack("!H", stream[position + 2 : position + 4])[0]
            return code
        position = stream.rfind(b"\x88", 0, position)
    return None


async def test_a_client_that_stops_reading_is_shed_and_hurts_nobody(running: Cluster) -> None:
    cluster = running
    server = cluster.servers[0]
    token, marketer_id = await alice(cluster)
    campaign_id = await active_campaign(cluster, token)
    topics = [f"marketer:{marketer_id}:campaigns", f"campaign:{campaign_id}"]
    healthy = clients_for(cluster, token, topics, [([0], False)] * 3)
    producer = Producer(cluster.database_url_for_tests, cluster.redis_url, campaign_id)

    async def slow_consumers() -> int:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"{server.url}/metrics")).text
            return int(parse_metrics(text)["pulse_slow_consumers_total"])

    for client in healthy:
        client.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.subscribed.wait() for c in healthy)), 15)
        before = await heads_of(cluster.direct_database_url, topics)
        shed_before = await slow_consumers()
        producer.start(EVENTS_PER_SECOND, BATCH)
        await asyncio.sleep(PHASE_SECONDS)
        baseline_end = time.time()
        rss_before = server.rss_kb()

        stalled = await asyncio.to_thread(StalledClient, server.port or 0, token)
        for topic in topics:
            stalled.send_text(encode(Subscribe(parse_topic(topic))))
        stalled_at = time.time()
        rss_peak = rss_before
        while await slow_consumers() == shed_before:
            rss_peak = max(rss_peak, server.rss_kb())
            assert time.time() - stalled_at < 60, "the stalled client was never shed"
            await asyncio.sleep(0.1)
        shed_at = time.time()
        # It reads again: the server's goodbye (error frame, then close) waits at the end of
        # what was buffered for it. One that never reads again is dropped after 2 s.
        draining = asyncio.create_task(asyncio.to_thread(stalled.drain))
        await asyncio.sleep(PHASE_SECONDS)
        rss_peak = max(rss_peak, server.rss_kb())
        await producer.stop()
        heads = await heads_of(cluster.direct_database_url, topics)
        await wait_for(lambda: all(c.caught_up(heads) for c in healthy), 30, "the healthy clients")
        stream = await draining
    finally:
        await producer.stop()
        for client in healthy:
            await client.stop()

    assert f'"code":"{ErrorCode.SLOW_CONSUMER}"'.encode() in stream[-4096:]
    assert close_code_of(stream) == CLOSE_SLOW_CONSUMER
    delivery = tally(healthy, heads, before)
    assert all(c.connections == 1 for c in healthy), "a healthy client was disconnected"
    assert delivery.lost == 0 and delivery.duplicated == 0, delivery
    growth = rss_peak - rss_before
    assert growth < MAX_RSS_GROWTH_KB, f"server memory grew by {growth} KB"
    latencies = [lat for c in healthy for at, lat in c.latencies]
    baseline = [lat for c in healthy for at, lat in c.latencies if at <= baseline_end]
    stalled_phase = [lat for c in healthy for at, lat in c.latencies if at > stalled_at]
    p99_base, p99_stalled = percentile(baseline, 0.99), percentile(stalled_phase, 0.99)
    allowed = max(MAX_HEALTHY_P99_SECONDS, MAX_HEALTHY_P99_GROWTH * p99_base)
    assert p99_stalled < allowed, (p99_base, p99_stalled)
    assert latencies
    record_delivery(
        cluster.backend,
        "a client stops reading (3 healthy beside it)",
        delivery,
        shed_at - stalled_at,
        (
            f"{EVENTS_PER_SECOND} events/s; shed with slow_consumer (close "
            f"{CLOSE_SLOW_CONSUMER}); server RSS +{growth} KB at most; healthy "
            f"p99 latency {p99_base * 1000:.0f} ms before, {p99_stalled * 1000:.0f} ms "
            "with it; recovery = time to shed it"
        ),
    )

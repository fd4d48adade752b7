"""Restart Redis while events are committed: what was committed meanwhile is delivered once it
is back, every server's listener comes back by itself, and `/readyz` says not ready meanwhile."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.faults.clients import Producer, heads_of, tally, wait_for
from tests.faults.cluster import Cluster
from tests.faults.figures import record_delivery
from tests.faults.helpers import active_campaign, alice, clients_for, unpublished_count

pytestmark = pytest.mark.faults

EVENTS_PER_SECOND = 20
OUTAGE_SECONDS = 3.0
LAYOUT = [([0], False), ([0], False), ([1], False), ([1], False)]


async def readiness(cluster: Cluster) -> list[int | None]:
    async with httpx.AsyncClient(timeout=3) as http:

        async def one(url: str) -> int | None:
            try:
                return (await http.get(f"{url}/readyz")).status_code
            except httpx.HTTPError:
                return None

        return list(await asyncio.gather(*(one(s.url) for s in cluster.servers)))


async def test_events_committed_while_redis_is_down_are_delivered_after(
    running: Cluster,
) -> None:
    cluster = running
    assert cluster.redis is not None
    token, marketer_id = await alice(cluster)
    campaign_id = await active_campaign(cluster, token)
    topics = [f"marketer:{marketer_id}:campaigns", f"campaign:{campaign_id}"]
    clients = clients_for(cluster, token, topics, LAYOUT)
    producer = Producer(cluster.database_url_for_tests, cluster.redis_url, campaign_id)
    for client in clients:
        client.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.subscribed.wait() for c in clients)), 15)
        before = await heads_of(cluster.direct_database_url, topics)
        producer.start(EVENTS_PER_SECOND)
        await asyncio.sleep(1.0)

        cluster.redis.stop()  # from this thread: see Cluster.restart_server
        down_at = time.time()
        committed_before_outage = producer.committed
        not_ready_seen = [False, False]
        while time.time() - down_at < OUTAGE_SECONDS:
            for n, status in enumerate(await readiness(cluster)):
                not_ready_seen[n] |= status == 503
            await asyncio.sleep(0.2)
        committed_while_down = producer.committed - committed_before_outage
        cluster.redis.start()
        up_at = time.time()
        heads_at_restart = await heads_of(cluster.direct_database_url, topics)

        async def all_ready() -> float:
            while (await readiness(cluster)) != [200, 200]:
                await asyncio.sleep(0.1)
            return time.time()

        ready_at, recovered_at = await asyncio.wait_for(
            asyncio.gather(
                all_ready(),
                wait_for(
                    lambda: all(c.caught_up(heads_at_restart) for c in clients),
                    30,
                    "the events committed while Redis was down",
                ),
            ),
            30,
        )
        await asyncio.sleep(1.0)
        await producer.stop()
        heads = await heads_of(cluster.direct_database_url, topics)
        await wait_for(
            lambda: all(c.caught_up(heads) for c in clients), 30, "every client to catch up"
        )
        # The relay of the workers publishes what could not be published while Redis was down.
        deadline = time.monotonic() + 30
        while await unpublished_count(cluster):
            assert time.monotonic() < deadline, "committed events left unpublished"
            await asyncio.sleep(0.5)
    finally:
        await producer.stop()
        for client in clients:
            await client.stop()

    delivery = tally(clients, heads, before)
    assert not_ready_seen == [True, True], "/readyz answered 200 while Redis was down"
    assert committed_while_down > 0
    assert all(c.connections == 1 for c in clients)
    assert delivery.lost == 0 and delivery.duplicated == 0 and delivery.resyncs == 0, delivery
    assert all(w.alive() for w in cluster.workers), "a worker died with Redis"
    record_delivery(
        cluster.backend,
        f"Redis down {OUTAGE_SECONDS:.0f} s and restarted",
        delivery,
        recovered_at - up_at,
        (
            f"{committed_while_down} events committed while Redis was down; both /readyz "
            f"503 meanwhile and 200 again {ready_at - up_at:.1f} s after the restart; "
            "recovery = restart to every client holding every event committed before it"
        ),
    )

"""kill -9 a server with clients subscribed while events flow: each client resumes with `after`
on the restarted server or on the other one, and ends with every seq once, in order."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.clients import Producer, heads_of, tally, wait_for
from tests.faults.cluster import Cluster
from tests.faults.figures import record_delivery
from tests.faults.helpers import active_campaign, alice, clients_for

pytestmark = pytest.mark.faults

EVENTS_PER_SECOND = 20
# Clients 0-1 wait for the killed server to come back, 2-3 move to the other server,
# 4-5 were on the other server all along.
LAYOUT = [([0], False), ([0], False), ([0, 1], True), ([0, 1], True), ([1], False), ([1], False)]


async def test_clients_of_a_killed_server_resume_without_loss_or_duplicates(
    running: Cluster,
) -> None:
    cluster = running
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
        await asyncio.sleep(1.5)
        victim = cluster.servers[0]
        victim.kill9()
        killed_at = time.time()
        await cluster.restart_server(victim)
        await asyncio.sleep(1.0)
        await producer.stop()
        heads = await heads_of(cluster.direct_database_url, topics)
        await wait_for(
            lambda: all(c.caught_up(heads) for c in clients), 30, "every client to catch up"
        )
    finally:
        await producer.stop()
        for client in clients:
            await client.stop()

    delivery = tally(clients, heads, before)
    moved = clients[:4]
    assert all(c.connections >= 2 for c in moved), [c.connections for c in moved]
    assert all(c.connections == 1 for c in clients[4:])
    assert delivery.lost == 0 and delivery.duplicated == 0 and delivery.resyncs == 0, delivery
    for client in clients:
        for topic, log in client.topics.items():
            assert log.start_seq is not None
            assert log.received == list(range(log.start_seq + 1, heads[topic] + 1)), client.name
            assert not log.gaps
    recovered = max(c.resumed_at[0] for c in moved) - killed_at
    record_delivery(
        cluster.backend,
        "kill -9 a server with 6 clients (4 on it)",
        delivery,
        recovered,
        (
            f"deliveries owed {delivery.expected} (each client x each event of its 2 topics); "
            "recovery = kill to the last moved client resubscribed with after (restart "
            "included for the 2 that waited for it)"
        ),
    )

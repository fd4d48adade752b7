"""The database unreachable for a few seconds (a TCP proxy in front of PostgreSQL, cut): the API
answers 503 with a clear message, nothing is half-written, and everything comes back by itself."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from tests.faults.clients import Producer, heads_of, tally, wait_for
from tests.faults.cluster import Cluster
from tests.faults.figures import record_delivery
from tests.faults.helpers import (
    active_campaign,
    alice,
    campaigns,
    clients_for,
    event_log_problems,
)

pytestmark = pytest.mark.faults

EVENTS_PER_SECOND = 20
OUTAGE_SECONDS = 3.0
# Not Alice: the login rate limit (per address and email) must not lock out the other tests.
NOBODY = "outage-probe@acme.example"


async def test_database_outage_answers_503_and_leaves_no_half_written_state(
    running: Cluster,
) -> None:
    cluster = running
    if cluster.proxy is None:
        pytest.skip("SQLite is a local file: it has no connection to cut")
    token, marketer_id = await alice(cluster)
    auth = {"Authorization": f"Bearer {token}"}
    campaign_id = await active_campaign(cluster, token)
    to_launch = next(
        c["id"]
        for c in await campaigns(cluster, token)
        if c["state"] == "not_launched" and c["id"] != cluster.everyone_campaign_id
    )
    topics = [f"marketer:{marketer_id}:campaigns", f"campaign:{campaign_id}"]
    clients = clients_for(cluster, token, topics, [([0], False), ([1], False)])
    producer = Producer(cluster.database_url_for_tests, cluster.redis_url, campaign_id)
    answers: Counter[tuple[str, int]] = Counter()
    details: set[str] = set()
    for client in clients:
        client.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.subscribed.wait() for c in clients)), 15)
        before = await heads_of(cluster.direct_database_url, topics)
        producer.start(EVENTS_PER_SECOND)
        await asyncio.sleep(1.0)

        cluster.proxy.cut()
        cut_at = time.time()
        async with httpx.AsyncClient(timeout=10) as http:
            while time.time() - cut_at < OUTAGE_SECONDS:
                for server in cluster.servers:
                    for name, method, path, body in (
                        ("campaigns", "GET", "/api/campaigns", None),
                        ("launch", "POST", f"/api/campaigns/{to_launch}/launch", None),
                        ("login", "POST", "/api/auth/login", {"email": NOBODY, "password": "x"}),
                        ("readyz", "GET", "/readyz", None),
                    ):
                        response = await http.request(
                            method, f"{server.url}{path}", headers=auth, json=body
                        )
                        answers[(name, response.status_code)] += 1
                        if name != "readyz" and response.status_code == 503:
                            details.add(response.json()["detail"])
                await asyncio.sleep(0.1)
            cluster.proxy.restore()
            restored_at = time.time()

            async def serving() -> bool:
                for server in cluster.servers:
                    ready = await http.get(f"{server.url}/readyz")
                    listing = await http.get(f"{server.url}/api/campaigns", headers=auth)
                    if (ready.status_code, listing.status_code) != (200, 200):
                        return False
                return True

            while not await serving():
                assert time.time() - restored_at < 30, "the API did not come back"
                await asyncio.sleep(0.1)
            recovered_at = time.time()
        await asyncio.sleep(1.0)
        await producer.stop()
        heads = await heads_of(cluster.direct_database_url, topics)
        await wait_for(
            lambda: all(c.caught_up(heads) for c in clients), 30, "every client to catch up"
        )

        # Nothing half-written: the launch refused during the outage did not happen, and
        # launching now runs to the end.
        state = {c["id"]: c for c in await campaigns(cluster, token)}[to_launch]
        assert state["state"] == "not_launched" and state["launched_at"] is None
        async with httpx.AsyncClient(base_url=cluster.servers[1].url, timeout=10) as http:
            launched = await http.post(f"/api/campaigns/{to_launch}/launch", headers=auth)
            assert launched.status_code == 202, launched.text
            deadline = time.monotonic() + 60
            while True:
                body = (await http.get(f"/api/campaigns/{to_launch}", headers=auth)).json()
                if body["stats"]["pending_offers"] > 0:
                    break
                assert time.monotonic() < deadline, "the launch after the outage did not finish"
                await asyncio.sleep(0.3)
        assert body["stats"]["pending_offers"] == body["stats"]["target_population"]
    finally:
        cluster.proxy.restore()
        await producer.stop()
        for client in clients:
            await client.stop()

    assert await event_log_problems(cluster) == []
    statuses = {status for (_, status) in answers}
    assert 500 not in statuses, answers
    for name in ("campaigns", "launch", "login", "readyz"):
        assert answers[(name, 503)] > 0, answers
        assert {s for (n, s) in answers if n == name} <= {503, 429}, answers
    assert all("database" in detail for detail in details), details
    delivery = tally(clients, heads, before)
    assert delivery.lost == 0 and delivery.duplicated == 0 and delivery.resyncs == 0, delivery
    record_delivery(
        cluster.backend,
        f"database unreachable {OUTAGE_SECONDS:.0f} s",
        delivery,
        recovered_at - restored_at,
        (
            f"{sum(answers.values())} requests during the outage: "
            + ", ".join(f"{n} {s}: {k}" for (n, s), k in sorted(answers.items()))
            + "; recovery = restore to both servers answering 200"
        ),
    )

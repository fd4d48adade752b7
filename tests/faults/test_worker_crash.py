"""kill -9 a worker in the middle of creating a campaign's offers: another worker retries the
job, and every member of the target gets exactly one offer, counted exactly once."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from pulse_core.names import JOB_CREATE_OFFERS
from tests.faults.clients import wait_for
from tests.faults.cluster import Cluster
from tests.faults.figures import FaultFigures, record
from tests.faults.helpers import alice, clients_for, offer_counts, stored_events

pytestmark = pytest.mark.faults

KILL_AFTER_SECONDS = 0.5


async def test_killed_worker_job_is_retried_and_offers_are_created_once(
    running: Cluster,
) -> None:
    cluster = running
    campaign_id = cluster.everyone_campaign_id
    token, marketer_id = await alice(cluster)
    topics = [f"marketer:{marketer_id}:campaigns", f"campaign:{campaign_id}"]
    [watcher] = clients_for(cluster, token, topics, [([1], False)])
    watcher.start()
    await asyncio.wait_for(watcher.subscribed.wait(), 10)

    async with httpx.AsyncClient(base_url=cluster.servers[0].url, timeout=10) as http:
        launched = await http.post(
            f"/api/campaigns/{campaign_id}/launch", headers={"Authorization": f"Bearer {token}"}
        )
    assert launched.status_code == 202, launched.text
    assert launched.json()["message"] == "Campaign launched! Building offers..."

    await wait_for(
        lambda: cluster.worker_running(JOB_CREATE_OFFERS) is not None, 20, "a worker to start"
    )
    victim = cluster.worker_running(JOB_CREATE_OFFERS)
    assert victim is not None
    await asyncio.sleep(KILL_AFTER_SECONDS)
    assert cluster.worker_running(JOB_CREATE_OFFERS) is victim, "the job ended before the kill"
    victim.kill9()
    killed_at = time.time()
    # Offers are created in one transaction: the killed one left nothing behind.
    assert await offer_counts(cluster, campaign_id) == (0, 0)

    stored: list[list[tuple[int, str, str]]] = []

    async def poll() -> bool:
        stored[:] = [await stored_events(cluster, f"campaign:{campaign_id}")]
        return any(event == "offers_created" for _, event, _ in stored[0])

    deadline = time.monotonic() + 60
    while not await poll():
        assert time.monotonic() < deadline, "the job was not retried within 60 s"
        await asyncio.sleep(0.2)
    campaign_log = watcher.topics[f"campaign:{campaign_id}"]
    head = max(seq for seq, _, _ in stored[0])
    recovered_at = await wait_for(lambda: campaign_log.last_seq >= head, 20, "the watcher")
    await watcher.stop()

    rows, members = await offer_counts(cluster, campaign_id)
    counts = [
        json.loads(frame)["count"] for _, event, frame in stored[0] if event == "offers_created"
    ]
    assert rows == members == cluster.everyone_population
    assert sum(counts) == rows
    assert len(counts) == 1
    assert campaign_log.duplicates == 0 and not campaign_log.gaps
    survivor = next(w for w in cluster.workers if w is not victim)
    assert f"{JOB_CREATE_OFFERS}({campaign_id}," in survivor.log(), "the other worker retried it"
    record(
        FaultFigures(
            backend=cluster.backend,
            fault="kill -9 a worker creating offers",
            sent=cluster.everyone_population,
            delivered=rows,
            duplicated=rows - members,
            lost=cluster.everyone_population - members,
            recover_seconds=recovered_at - killed_at,
            note=(
                "units are offers; retried by the other worker once the killed one's 5 s job "
                "lease ran out (arq's own mark lasts job timeout 600 s + 10 s); "
                "offers_created count = rows inserted"
            ),
        )
    )

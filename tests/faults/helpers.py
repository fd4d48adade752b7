"""Small async helpers shared by the fault tests: logins, campaigns, database checks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import distinct, func, select

from pulse_data.database import Database
from pulse_data.models import Offer, StoredEvent, TopicHead
from tests.faults.clients import ResumingClient, login
from tests.faults.cluster import Cluster

ALICE = "alice@acme.example"


async def alice(cluster: Cluster) -> tuple[str, int]:
    """Alice's token and marketer id."""
    body = await asyncio.to_thread(login, cluster.servers[0].url, ALICE)
    return body["access_token"], body["user"]["marketer_id"]


async def campaigns(cluster: Cluster, token: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=cluster.servers[0].url, timeout=10) as http:
        response = await http.get("/api/campaigns", headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result


async def active_campaign(cluster: Cluster, token: str) -> int:
    return int(next(c["id"] for c in await campaigns(cluster, token) if c["state"] == "active"))


def clients_for(
    cluster: Cluster, token: str, topics: list[str], layout: list[tuple[list[int], bool]]
) -> list[ResumingClient]:
    """One client per `(server indexes to try in order, switch on disconnect)`."""
    return [
        ResumingClient(
            f"c{n}",
            [cluster.servers[i].ws_url for i in servers],
            token,
            topics,
            switch_servers=switch,
        )
        for n, (servers, switch) in enumerate(layout)
    ]


async def offer_counts(cluster: Cluster, campaign_id: int) -> tuple[int, int]:
    """(offer rows, distinct members offered) of a campaign."""
    db = Database(cluster.direct_database_url, pool_size=1)
    try:
        async with db.reader() as session:
            rows = await session.scalar(
                select(func.count()).select_from(Offer).where(Offer.campaign_id == campaign_id)
            )
            members = await session.scalar(
                select(func.count(distinct(Offer.member_id))).where(
                    Offer.campaign_id == campaign_id
                )
            )
            return int(rows or 0), int(members or 0)
    finally:
        await db.dispose()


async def stored_events(cluster: Cluster, topic: str) -> list[tuple[int, str, str]]:
    """(seq, event, frame) of every stored event of a topic, in seq order."""
    db = Database(cluster.direct_database_url, pool_size=1)
    try:
        async with db.reader() as session:
            rows = await session.execute(
                select(StoredEvent.seq, StoredEvent.event, StoredEvent.frame)
                .where(StoredEvent.topic == topic)
                .order_by(StoredEvent.seq)
            )
            return [(int(seq), str(event), str(frame)) for seq, event, frame in rows]
    finally:
        await db.dispose()


async def event_log_problems(cluster: Cluster) -> list[str]:
    """Topics whose stored seqs are not exactly 1..head, and events never published."""
    db = Database(cluster.direct_database_url, pool_size=1)
    problems: list[str] = []
    try:
        async with db.reader() as session:
            heads = dict((await session.execute(select(TopicHead.topic, TopicHead.last_seq))).all())
            stored = await session.execute(
                select(
                    StoredEvent.topic,
                    func.count(),
                    func.count(distinct(StoredEvent.seq)),
                    func.min(StoredEvent.seq),
                    func.max(StoredEvent.seq),
                ).group_by(StoredEvent.topic)
            )
            for topic, count, unique, low, high in stored:
                if (count, unique, low, high) != (
                    heads.get(topic),
                    heads.get(topic),
                    1,
                    heads.get(topic),
                ):
                    problems.append(
                        f"{topic}: {count} stored, seqs {low}..{high}, head {heads.get(topic)}"
                    )
        return problems
    finally:
        await db.dispose()


async def unpublished_count(cluster: Cluster) -> int:
    db = Database(cluster.direct_database_url, pool_size=1)
    try:
        async with db.reader() as session:
            value = await session.scalar(
                select(func.count())
                .select_from(StoredEvent)
                .where(StoredEvent.published.is_(False))
            )
            return int(value or 0)
    finally:
        await db.dispose()

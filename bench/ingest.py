"""Ingestion: accepted ad events per second through HTTP in batches of 1,000, and the time from
a response to the `campaign_updated` it caused on a WebSocket subscriber.

Run: `.venv/bin/python -m bench.ingest` (SQLite in a temporary directory), or
`.venv/bin/python -m bench.ingest --database-url postgresql+asyncpg://postgres@127.0.0.1/pulse_bench
--reset` on an EMPTY PostgreSQL database that it may wipe. It seeds the demo data and the
launch benchmark's campaign (bench.launch), makes its 20,000 offers current, starts an embedded
redis-server and `pulse server`, and posts batches of 80 % banner views, 15 % text jumps and 5 %
completions with an ingestion key, like an ad server: first one sender waiting for each
campaign_updated, then several senders at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from websockets.asyncio.client import connect

from bench.launch import database_options, database_url, prepare, running_backend
from pulse_core.names import UpdateReason
from pulse_core.protocol import Event, Subscribe, Subscribed, encode, parse_server_frame
from pulse_core.topics import parse_topic
from pulse_data import apikeys
from pulse_data.audit import command_line_actor
from pulse_data.database import Database
from pulse_data.models import Campaign, utcnow
from pulse_data.offers import activate_due_offers, create_offers
from pulse_data.population import populate_target

BATCH = 1000
MIX = {"banner_view": 80, "text_jump": 15, "completion": 5}


async def live_campaign(url: str, campaign_id: int) -> tuple[int, str]:
    """Launch the benchmark's campaign in-process with every offer current; (marketer, key)."""
    db = Database(url)
    try:
        async with db.writer() as session:
            marketer_id, target_id = (
                await session.execute(
                    select(Campaign.marketer_id, Campaign.target_id).where(
                        Campaign.id == campaign_id
                    )
                )
            ).one()
            await session.execute(
                update(Campaign).where(Campaign.id == campaign_id).values(launched_at=utcnow())
            )
            await session.commit()
        await populate_target(db, None, target_id)
        await create_offers(db, None, campaign_id, activation_delay=timedelta(0))
        await activate_due_offers(db, None)
        created = await apikeys.create_key(db, marketer_id, "benchmark", command_line_actor())
        return marketer_id, created.key
    finally:
        await db.dispose()


class Sender:
    """Builds batches like an ad server: unique ids, each offer completed at most once.

    Views and jumps go to one half of the offers, completions to the other, so no event
    names an offer that an earlier batch completed.
    """

    def __init__(self, offers: list[int]) -> None:
        self.rng = random.Random(11)
        shuffled = self.rng.sample(offers, len(offers))
        half = len(shuffled) // 2
        self.viewed, self.to_complete = shuffled[:half], shuffled[half:]
        self.serial = 0
        self.sent = dict.fromkeys(MIX, 0)

    def batch(self) -> bytes:
        at = datetime.now(UTC).isoformat()
        kinds = self.rng.choices(list(MIX), weights=list(MIX.values()), k=BATCH)
        events = []
        for kind in kinds:
            if kind == "completion" and self.to_complete:
                offer = self.to_complete.pop()
            else:
                kind = "banner_view" if kind == "completion" else kind
                offer = self.rng.choice(self.viewed)
            self.serial += 1
            self.sent[kind] += 1
            events.append({"id": f"bench-{self.serial}", "offer_id": offer, "kind": kind, "at": at})
        return json.dumps({"events": events}).encode()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def measure(
    base: str, key: str, campaign_id: int, batches: int, senders: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        offers: list[int] = []
        listed, after = 0, 0
        feed_started = time.perf_counter()
        while page := (
            await http.get("/api/ingest/offers", params={"after": after, "limit": 1000})
        ).json():
            offers += [offer["id"] for offer in page if offer["campaign_id"] == campaign_id]
            listed, after = listed + len(page), page[-1]["id"]
        feed_s = time.perf_counter() - feed_started
        sender = Sender(offers)
        login = (
            await http.post(
                "/api/auth/login", json={"email": "alice@acme.example", "password": "pulse-demo"}
            )
        ).json()
        ws_url = base.replace("http", "ws", 1) + "/api/ws"
        arrivals: asyncio.Queue[tuple[float, Event]] = asyncio.Queue()
        user = {"Authorization": f"Bearer {login['access_token']}"}
        async with connect(ws_url, additional_headers=user, max_size=None) as ws:
            topic = f"campaign:{campaign_id}"
            await ws.send(encode(Subscribe(parse_topic(topic))))
            assert isinstance(parse_server_frame(await ws.recv()), Subscribed)

            async def read() -> None:
                async for message in ws:
                    frame = parse_server_frame(message)
                    if isinstance(frame, Event) and frame.reason == UpdateReason.AD_ACTIVITY:
                        arrivals.put_nowait((time.perf_counter(), frame))

            reader = asyncio.create_task(read())

            async def post(body: bytes) -> dict[str, Any]:
                response = await http.post("/api/ingest/ad-events", content=body)
                assert response.status_code == 200, response.text[:500]
                answer: dict[str, Any] = response.json()
                return answer

            for _ in range(2):  # warm-up
                await post(sender.batch())
                await arrivals.get()

            bodies = [sender.batch() for _ in range(batches)]
            latencies: list[float] = []  # response -> event
            round_trips: list[float] = []  # request -> event
            accepted = 0
            started = time.perf_counter()
            for body in bodies:
                sent = time.perf_counter()
                accepted += (await post(body))["accepted"]
                answered = time.perf_counter()
                arrived, _ = await asyncio.wait_for(arrivals.get(), 10)
                latencies.append(arrived - answered)
                round_trips.append(arrived - sent)
            one_sender_s = time.perf_counter() - started

            bodies = [sender.batch() for _ in range(batches)]
            queue = list(bodies)

            async def send_all() -> int:
                total = 0
                while queue:
                    total += (await post(queue.pop()))["accepted"]
                return total

            started = time.perf_counter()
            many = sum(await asyncio.gather(*(send_all() for _ in range(senders))))
            many_s = time.perf_counter() - started
            while not arrivals.empty():
                arrivals.get_nowait()
            reader.cancel()

        campaign = (await http.get(f"/api/campaigns/{campaign_id}", headers=user)).json()
    stats = campaign["stats"]
    # Every event sent (the warm-up's too) is in the stats, once.
    assert accepted == many == batches * BATCH, (accepted, many)
    assert stats["banner_views"] == sender.sent["banner_view"], stats
    assert stats["text_jumps"] == sender.sent["text_jump"], stats
    assert stats["completed_offers"] == sender.sent["completion"], stats
    return {
        "offers": len(offers),
        "feed_offers_per_s": listed / feed_s,
        "one_sender_events_per_s": accepted / one_sender_s,
        "one_sender_request_ms": one_sender_s / batches * 1000,
        "senders": senders,
        "many_senders_events_per_s": many / many_s,
        "to_subscriber_p50_ms": percentile(latencies, 0.5) * 1000,
        "to_subscriber_p99_ms": percentile(latencies, 0.99) * 1000,
        "to_subscriber_max_ms": max(latencies) * 1000,
        "to_subscriber_mean_ms": statistics.fmean(latencies) * 1000,
        "request_to_subscriber_p50_ms": percentile(round_trips, 0.5) * 1000,
        "request_to_subscriber_p99_ms": percentile(round_trips, 0.99) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    database_options(parser)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=40, help="batches of 1,000 per phase")
    parser.add_argument("--senders", type=int, default=4, help="senders at once, second phase")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as directory:
        url = database_url(args, directory)
        seeding = time.perf_counter()
        try:
            campaign_id, members = asyncio.run(prepare(url, args.members, args.reset))
            _, key = asyncio.run(live_campaign(url, campaign_id))
        except (DBAPIError, OSError) as exc:
            reason = getattr(exc, "orig", None) or exc
            parser.exit(
                2,
                f"cannot prepare the database at {url}: {reason}\n"
                "Give an existing, empty database (PostgreSQL: createdb pulse_bench).\n",
            )
        print(f"seeded {members} members and their offers in {time.perf_counter() - seeding:.1f} s")
        with running_backend(url, Path(directory), worker=False) as (base, _redis_url):
            result = asyncio.run(measure(base, key, campaign_id, args.batches, args.senders))
    backend = url.split(":", 1)[0]
    print(
        f"\n{backend}: {result['one_sender_events_per_s']:,.0f} events/s with one sender "
        f"({result['one_sender_request_ms']:.0f} ms per batch of {BATCH:,}), "
        f"{result['many_senders_events_per_s']:,.0f} events/s with {result['senders']} senders; "
        "response -> campaign_updated on a subscriber: "
        f"p50 {result['to_subscriber_p50_ms']:.1f} ms, "
        f"p99 {result['to_subscriber_p99_ms']:.1f} ms (negative: it arrived before the response), "
        f"request -> campaign_updated p50 {result['request_to_subscriber_p50_ms']:.0f} ms, "
        f"p99 {result['request_to_subscriber_p99_ms']:.0f} ms; "
        f"offers feed {result['feed_offers_per_s']:,.0f} offers/s"
    )
    print(json.dumps({"backend": backend, **result}))


if __name__ == "__main__":
    main()

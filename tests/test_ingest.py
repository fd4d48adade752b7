"""The ingestion API against a real server: an ad server's events move the stats once and only
once, a bad request keeps nothing, and only a valid ingestion key gets in."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import exists, select, update

from pulse_data import apikeys
from pulse_data.audit import command_line_actor
from pulse_data.database import Database
from pulse_data.models import AdEvent, Campaign, Offer, OfferState
from tests.backend import ALICE, CAROL, LiveBackend
from tests.conftest import run_in_new_loop
from tests.wsclient import WsClient, events_of

NOW = datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class FreshOffer:
    """A current offer whose member has no ad event in its campaign yet."""

    id: int
    campaign_id: int
    cost_cents: int


async def fresh_offers(backend: LiveBackend, marketer_id: int) -> dict[int, list[FreshOffer]]:
    """Per active campaign of the marketer, its current offers not seen by anyone yet."""
    db = Database(backend.settings.database_url or "")
    try:
        async with db.reader() as session:
            seen = exists().where(
                AdEvent.campaign_id == Offer.campaign_id, AdEvent.member_id == Offer.member_id
            )
            rows = await session.execute(
                select(Offer.id, Offer.campaign_id, Offer.marketer_cost_cents)
                .join(Campaign, Campaign.id == Offer.campaign_id)
                .where(
                    Campaign.marketer_id == marketer_id,
                    Campaign.deactivated_at.is_(None),
                    Offer.state == OfferState.CURRENT,
                    ~seen,
                )
                .order_by(Offer.id)
            )
            result: dict[int, list[FreshOffer]] = {}
            for row in rows:
                result.setdefault(row.campaign_id, []).append(FreshOffer(*row))
            return result
    finally:
        await db.dispose()


async def make_key(backend: LiveBackend, marketer_id: int) -> str:
    db = Database(backend.settings.database_url or "")
    try:
        return (await apikeys.create_key(db, marketer_id, "ad server", command_line_actor())).key
    finally:
        await db.dispose()


def marketer_of(backend: LiveBackend, email: str) -> int:
    return int(backend.login(email)["user"]["marketer_id"])


def event(event_id: str, offer_id: int, kind: str, at: str = NOW) -> dict[str, Any]:
    return {"id": event_id, "offer_id": offer_id, "kind": kind, "at": at}


def stats_of(client: httpx.Client, campaign_id: int) -> dict[str, Any]:
    stats: dict[str, Any] = client.get(f"/api/campaigns/{campaign_id}").json()["stats"]
    return stats


def moved(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What changed in the stats, in cents for money."""
    keys = ("banner_views", "text_jumps", "unique_reach", "current_offers", "completed_offers")
    change: dict[str, Any] = {key: after[key] - before[key] for key in keys}
    for money in ("spend_to_date", "balance"):
        change[money] = round(after[money] * 100) - round(before[money] * 100)
    return change


async def test_events_move_stats_as_the_demo_would_once_and_one_update_per_campaign(
    live_backend: LiveBackend,
) -> None:
    acme = marketer_of(live_backend, ALICE)
    key = await make_key(live_backend, acme)
    offers = await fresh_offers(live_backend, acme)
    assert len(offers) == 2, "the demo data has two active Acme campaigns with current offers"
    (first, a), (second, b) = sorted(offers.items())
    batch = [
        event("view-1", a[0].id, "banner_view"),
        event("view-2", a[0].id, "banner_view"),
        event("jump-1", a[0].id, "text_jump"),
        event("view-3", a[1].id, "banner_view"),
        event("done-1", a[2].id, "completion"),
        event("view-1", a[3].id, "banner_view"),  # the same id again in one request: counted once
        event("view-4", b[0].id, "banner_view"),
        event("done-2", b[0].id, "completion"),
    ]
    headers = {"Authorization": f"Bearer {key}"}
    with live_backend.client(ALICE) as alice:
        before = {cid: stats_of(alice, cid) for cid in (first, second)}
        async with await WsClient.open(live_backend.ws_url, live_backend.token(ALICE)) as ws:
            await ws.subscribe(f"marketer:{acme}:campaigns")
            # Three identical requests at once (a sender retrying early): counted once in all.
            async with httpx.AsyncClient(base_url=live_backend.url, headers=headers) as sender:
                responses = await asyncio.gather(
                    *(
                        sender.post("/api/ingest/ad-events", json={"events": batch})
                        for _ in range(3)
                    )
                )
                assert [r.status_code for r in responses] == [200] * 3, responses[0].text
                answers = [r.json() for r in responses]
                assert all(a["accepted"] + a["duplicates"] == len(batch) for a in answers)
                assert sorted(a["accepted"] for a in answers) == [0, 0, 7]
                # A retry later: all duplicates, nothing moves.
                retry = await sender.post("/api/ingest/ad-events", json={"events": batch})
                assert retry.json() == {"accepted": 0, "duplicates": len(batch)}
                last = await sender.post(
                    "/api/ingest/ad-events",
                    json={"events": [event("view-5", a[1].id, "banner_view")]},
                )
                assert last.json() == {"accepted": 1, "duplicates": 0}
            frames = await ws.recv_until(
                lambda f: (
                    f.get("reason") == "ad_activity"
                    and f["stats"]["banner_views"] == before[first]["banner_views"] + 4
                )
            )
        after = {cid: stats_of(alice, cid) for cid in (first, second)}

    updates = [f for f in events_of(frames, "campaign_updated") if f.get("reason") == "ad_activity"]
    # One update per campaign touched by the first request, none for the duplicates, then one.
    assert sorted(f["campaign_id"] for f in updates[:2]) == [first, second]
    assert [f["campaign_id"] for f in updates[2:]] == [first]
    assert all("actor" not in f for f in updates)
    assert updates[-1]["stats"] == after[first]
    assert moved(before[first], after[first]) == {
        "banner_views": 4,
        "text_jumps": 1,
        "unique_reach": 3,
        "current_offers": -1,
        "completed_offers": 1,
        "spend_to_date": a[2].cost_cents,
        "balance": -a[2].cost_cents,
    }
    assert moved(before[second], after[second]) == {
        "banner_views": 1,
        "text_jumps": 0,
        "unique_reach": 1,
        "current_offers": -1,
        "completed_offers": 1,
        "spend_to_date": b[0].cost_cents,
        "balance": -b[0].cost_cents,
    }
    async with httpx.AsyncClient(base_url=live_backend.url, headers=headers) as sender:
        feed = (await sender.get("/api/ingest/offers", params={"limit": 1000})).json()
    assert {a[2].id, b[0].id}.isdisjoint(offer["id"] for offer in feed)


async def pause_and_find_archived_offer(backend: LiveBackend, marketer_id: int, paused: int) -> int:
    """Pause one campaign; returns an offer of the marketer's archived campaign."""
    db = Database(backend.settings.database_url or "")
    try:
        async with db.writer() as session:
            await session.execute(
                update(Campaign).where(Campaign.id == paused).values(paused_at=datetime.now(UTC))
            )
            archived = (
                await session.execute(
                    select(Offer.id)
                    .join(Campaign, Campaign.id == Offer.campaign_id)
                    .where(
                        Campaign.marketer_id == marketer_id, Campaign.deactivated_at.is_not(None)
                    )
                    .limit(1)
                )
            ).scalar_one()
            await session.commit()
            return int(archived)
    finally:
        await db.dispose()


def test_a_bad_item_refuses_the_whole_request_naming_each(live_backend: LiveBackend) -> None:
    acme, globex = marketer_of(live_backend, ALICE), marketer_of(live_backend, CAROL)
    key = run_in_new_loop(lambda: make_key(live_backend, acme))
    offers = run_in_new_loop(lambda: fresh_offers(live_backend, acme))
    (active, good), (paused, on_pause) = sorted(offers.items())
    other = next(iter(run_in_new_loop(lambda: fresh_offers(live_backend, globex)).values()))[0]
    archived = run_in_new_loop(lambda: pause_and_find_archived_offer(live_backend, acme, paused))
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    batch = [
        event("ok-1", good[0].id, "completion"),
        event("bad-1", other.id, "banner_view"),
        event("bad-2", good[1].id, "glance"),
        event("bad-3", good[1].id, "banner_view", at=soon),
        event("x" * 101, good[1].id, "banner_view"),
        event("bad-5", good[1].id, "banner_view", at="yesterday"),
        event("bad-6", on_pause[0].id, "banner_view"),
        event("bad-7", archived, "text_jump"),
        event("bad-8", good[0].id, "completion"),
        "not an event",
    ]
    headers = {"Authorization": f"Bearer {key}"}
    with live_backend.client(ALICE) as alice:
        before = stats_of(alice, active)
        with httpx.Client(base_url=live_backend.url, headers=headers) as sender:
            refused = sender.post("/api/ingest/ad-events", json={"events": batch})
            assert refused.status_code == 422, refused.text
            reasons = {item["index"]: item["reason"] for item in refused.json()["detail"]}
            assert sorted(reasons) == list(range(1, len(batch)))
            assert reasons[1] == f"unknown offer {other.id}"
            assert "kind must be one of" in reasons[2]
            assert "in the future" in reasons[3]
            assert "longer than 100" in reasons[4]
            assert "ISO 8601" in reasons[5]
            assert reasons[6] == f"campaign {paused} is paused: it takes no ad events"
            assert "is archived: it takes no ad events" in reasons[7]
            assert "completed by event 0 of this request" in reasons[8]
            assert "an event is an object" in reasons[9]
            assert stats_of(alice, active) == before
            for body in ({"events": []}, {"events": [batch[0]] * 1001}):
                assert sender.post("/api/ingest/ad-events", json=body).status_code == 422
            # Nothing of the refused request was kept: its good item is new.
            kept = sender.post("/api/ingest/ad-events", json={"events": [batch[0]]})
            assert kept.json() == {"accepted": 1, "duplicates": 0}
        assert moved(before, stats_of(alice, active))["spend_to_date"] == good[0].cost_cents


async def revoke_last_key(backend: LiveBackend, marketer_id: int) -> None:
    db = Database(backend.settings.database_url or "")
    try:
        key_id = (await apikeys.list_keys(db, marketer_id))[-1].id
        await apikeys.revoke_key(db, key_id, command_line_actor())
    finally:
        await db.dispose()


def test_only_a_valid_ingestion_key_gets_in_and_the_feed_pages_by_id(
    live_backend: LiveBackend,
) -> None:
    acme = marketer_of(live_backend, ALICE)
    key = run_in_new_loop(lambda: make_key(live_backend, acme))
    with live_backend.client(ALICE) as alice:
        active = {c["id"] for c in alice.get("/api/campaigns").json() if c["state"] == "active"}
    offers_url = f"{live_backend.url}/api/ingest/offers"
    events_url = f"{live_backend.url}/api/ingest/ad-events"
    for headers in (
        {},
        {"Authorization": f"Bearer {live_backend.token(ALICE)}"},
        {"Authorization": "Bearer pk_not-a-key"},
    ):
        assert httpx.get(offers_url, headers=headers).status_code == 401
        response = httpx.post(events_url, headers=headers, json={"events": []})
        assert response.status_code == 401 and response.json()["detail"]

    with httpx.Client(headers={"Authorization": f"Bearer {key}"}) as sender:
        everything = sender.get(offers_url, params={"limit": 1000}).json()
        assert len(sender.get(offers_url).json()) == min(100, len(everything))
        assert sender.get(offers_url, params={"limit": 1001}).status_code == 422
        pages: list[list[dict[str, Any]]] = []
        after = 0
        while page := sender.get(offers_url, params={"after": after, "limit": 97}).json():
            assert len(page) <= 97
            pages.append(page)
            after = page[-1]["id"]
        paged = [offer for page in pages for offer in page]
        assert paged == everything and len(pages) > 1
        assert [o["id"] for o in paged] == sorted({o["id"] for o in paged})
        assert {o["campaign_id"] for o in paged} == active
        assert set(paged[0]) == {
            "id",
            "campaign_id",
            "member_handle",
            "band_id",
            "offer_amount_cents",
        }

        run_in_new_loop(lambda: revoke_last_key(live_backend, acme))
        assert sender.get(offers_url).status_code == 401
        one = [event("after-revoke", everything[0]["id"], "banner_view")]
        assert sender.post(events_url, json={"events": one}).status_code == 401

"""Demo traffic: ad events on current offers of active campaigns, completions charged."""

from __future__ import annotations

import random

from sqlalchemy import select, update

from pulse_core.names import EventName, UpdateReason
from pulse_core.topics import campaign_topic
from pulse_data.database import Database
from pulse_data.models import (
    AdEvent,
    AdEventKind,
    Campaign,
    LedgerEntry,
    LedgerKind,
    Offer,
    OfferState,
    utcnow,
)
from pulse_data.offers import activate_due_offers, create_offers
from pulse_data.population import populate_target
from pulse_data.stats import campaign_stats
from pulse_data.traffic import COMPLETION_DESCRIPTION, simulate_ad_activity
from tests.factories import make_campaign, make_population, make_world, stored_events


async def _live_campaigns(db: Database, per_band: int = 30) -> tuple[int, int, int]:
    """An active campaign with current offers, one with pending offers, and a not-launched one."""
    world = await make_world(db)
    await make_population(db, world, per_band=per_band)
    active = await make_campaign(db, world)
    pending_only = await make_campaign(db, world)
    waiting = await make_campaign(db, world, launched=False)
    await populate_target(db, None, world.target_id)
    await create_offers(db, None, active)
    await create_offers(db, None, pending_only)
    async with db.writer() as session:
        await session.execute(
            update(Offer).where(Offer.campaign_id == active).values(activate_at=utcnow())
        )
        await session.commit()
    await activate_due_offers(db, None)
    return active, pending_only, waiting


async def test_traffic_touches_only_current_offers_and_charges_each_completion(
    db: Database,
) -> None:
    active, pending_only, _ = await _live_campaigns(db)
    async with db.reader() as session:
        world_of_active = await session.scalar(
            select(Campaign.marketer_id).where(Campaign.id == active)
        )
    rng = random.Random(3)
    totals = [await simulate_ad_activity(db, None, rng=rng, max_offers=30) for _ in range(10)]

    async with db.reader() as session:
        events = (await session.scalars(select(AdEvent))).all()
        charges = (
            await session.scalars(
                select(LedgerEntry).where(LedgerEntry.description == COMPLETION_DESCRIPTION)
            )
        ).all()
        completed = (
            await session.scalars(select(Offer).where(Offer.state == OfferState.COMPLETED))
        ).all()
        stats = (await campaign_stats(session, campaign_ids=[active, pending_only]))[active]
    assert {event.campaign_id for event in events} == {active}
    # The demo is a sender like any ad server: its own unique ids, stored for its marketer.
    assert all(event.external_id and event.external_id.startswith("demo-") for event in events)
    assert len({event.external_id for event in events}) == len(events)
    assert {event.marketer_id for event in events} == {world_of_active}
    completions = [event for event in events if event.kind == AdEventKind.COMPLETION]
    assert sum(total.completions for total in totals) == len(completions) == len(completed) > 0
    assert {charge.kind for charge in charges} == {LedgerKind.CHARGE}
    assert sorted(-charge.amount_cents for charge in charges) == sorted(
        event.cost_cents for event in completions
    )
    assert {event.offer_id for event in completions} == {offer.id for offer in completed}
    assert stats.banner_views == sum(total.banner_views for total in totals) > 0
    assert stats.spend_to_date == round(sum(e.cost_cents for e in completions) / 100, 2)
    assert stats.balance == round(1000 - stats.spend_to_date, 2)


async def test_traffic_announces_one_ad_activity_update_per_touched_campaign(db: Database) -> None:
    active, pending_only, waiting = await _live_campaigns(db)
    before = len(await stored_events(db, campaign_topic(active)))
    result = await simulate_ad_activity(db, None, rng=random.Random(1), max_offers=20)
    frames = [event.frame for event in (await stored_events(db, campaign_topic(active)))[before:]]
    assert result.campaigns == 1 and len(frames) == 1
    assert EventName.CAMPAIGN_UPDATED in frames[0] and UpdateReason.AD_ACTIVITY in frames[0]
    for other in (pending_only, waiting):
        other_frames = await stored_events(db, campaign_topic(other))
        assert not any(UpdateReason.AD_ACTIVITY in event.frame for event in other_frames)


async def test_traffic_without_current_offers_does_nothing(db: Database) -> None:
    world = await make_world(db)
    await make_campaign(db, world)
    result = await simulate_ad_activity(db, None, rng=random.Random(1))
    assert result.campaigns == 0 and result.banner_views == 0


async def test_traffic_sends_nothing_for_a_paused_campaign(db: Database) -> None:
    active, _, _ = await _live_campaigns(db)
    async with db.writer() as session:
        await session.execute(
            update(Campaign).where(Campaign.id == active).values(paused_at=utcnow())
        )
        await session.commit()
    result = await simulate_ad_activity(db, None, rng=random.Random(2), max_offers=30)
    async with db.reader() as session:
        assert (await session.scalars(select(AdEvent.id))).all() == []
    assert result.campaigns == 0

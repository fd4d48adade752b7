"""Creating offers (each counted once, per member) and activating them, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from arq import Retry
from sqlalchemy import func, select, text, update

from pulse_core.config import Settings
from pulse_core.names import AuditAction, EventName, UpdateReason
from pulse_core.topics import campaign_topic, marketer_topic
from pulse_data import eventlog, offers, population
from pulse_data.audit import command_line_actor
from pulse_data.campaigns import change_state
from pulse_data.database import Database
from pulse_data.eventlog import PendingEvent
from pulse_data.models import Campaign, Offer, OfferState, TargetPopulation, utcnow
from pulse_data.offers import (
    TargetNotPopulated,
    TargetStillPopulating,
    activate_due_offers,
    create_offers,
)
from pulse_data.population import mark_populating, populate_target
from pulse_data.pubsub import campaign_transaction
from tests.factories import (
    BIDS,
    BULLSEYE,
    make_campaign,
    make_members,
    make_population,
    make_world,
    stored_events,
)
from workers import jobs

HOUR = timedelta(hours=1)


async def _frames(db: Database, topic: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(event.frame) for event in await stored_events(db, topic)]


async def _placed(db: Database, target_id: int) -> int:
    async with db.reader() as session:
        count = await session.scalar(
            select(func.count(TargetPopulation.id)).where(TargetPopulation.target_id == target_id)
        )
    return int(count or 0)


async def _offers(db: Database, campaign_id: int) -> list[Offer]:
    async with db.reader() as session:
        query = select(Offer).where(Offer.campaign_id == campaign_id).order_by(Offer.member_id)
        return list((await session.scalars(query)).all())


async def test_every_populated_member_gets_one_pending_offer_at_its_band_bid(db: Database) -> None:
    world = await make_world(db)
    members = await make_population(db, world, per_band=2)
    campaign = await make_campaign(db, world)
    await populate_target(db, None, world.target_id)
    before = utcnow()

    created = await create_offers(db, None, campaign, activation_delay=HOUR)

    offers = await _offers(db, campaign)
    assert created == len(offers) == 6
    assert [offer.member_id for offer in offers] == members[:6]
    amounts = [(offer.offer_amount_cents, offer.marketer_cost_cents) for offer in offers]
    assert amounts == [BIDS[0]] * 2 + [BIDS[1]] * 2 + [BIDS[2]] * 2
    assert {offer.state for offer in offers} == {OfferState.PENDING}
    assert all(before + HOUR <= offer.activate_at <= utcnow() + HOUR for offer in offers)


async def test_batches_smaller_than_the_population_count_every_offer_once(db: Database) -> None:
    world = await make_world(db)
    await make_population(db, world, per_band=7)
    campaign = await make_campaign(db, world)
    await populate_target(db, None, world.target_id)
    assert await create_offers(db, None, campaign, batch_size=4) == 21
    assert len(await _offers(db, campaign)) == 21


async def test_offers_created_and_campaign_updated_go_to_both_topics_with_stats(
    db: Database,
) -> None:
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)
    await populate_target(db, None, world.target_id)
    await create_offers(db, None, campaign, request_id="req-1")

    for topic in (campaign_topic(campaign), marketer_topic(world.marketer_id)):
        created, updated = (await _frames(db, topic))[-2:]
        assert created["event"] == EventName.OFFERS_CREATED
        assert created["count"] == 6 and created["request_id"] == "req-1"
        assert created["stats"]["pending_offers"] == 6
        assert updated["event"] == EventName.CAMPAIGN_UPDATED
        assert updated["reason"] == UpdateReason.OFFERS_REFRESHED
        assert updated["created"] == 6 and updated["request_id"] == "req-1"


async def test_rerun_inserts_nothing_and_sends_only_campaign_updated(db: Database) -> None:
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)
    await populate_target(db, None, world.target_id)
    assert await create_offers(db, None, campaign) == 6
    events_before = len(await _frames(db, campaign_topic(campaign)))

    assert await create_offers(db, None, campaign) == 0

    new_frames = (await _frames(db, campaign_topic(campaign)))[events_before:]
    assert [frame["event"] for frame in new_frames] == [EventName.CAMPAIGN_UPDATED]
    assert new_frames[0]["created"] == 0 and "request_id" not in new_frames[0]
    assert len(await _offers(db, campaign)) == 6


async def test_refresh_offers_only_members_new_to_the_population(db: Database) -> None:
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)
    await populate_target(db, None, world.target_id)
    await create_offers(db, None, campaign)
    (newcomer,) = await make_members(db, world, [BULLSEYE])
    await populate_target(db, None, world.target_id)

    assert await create_offers(db, None, campaign) == 1
    assert newcomer in {offer.member_id for offer in await _offers(db, campaign)}


async def test_offers_wait_for_a_target_that_is_populating_or_not_populated(db: Database) -> None:
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)
    with pytest.raises(TargetNotPopulated):
        await create_offers(db, None, campaign)
    await mark_populating(db, None, world.target_id, only_if_not_populated=True)
    with pytest.raises(TargetStillPopulating):
        await create_offers(db, None, campaign)
    assert await _offers(db, campaign) == []
    assert [frame["event"] for frame in await _frames(db, campaign_topic(campaign))] == [
        EventName.CAMPAIGN_UPDATED  # the target's status changed to populating
    ]


async def test_archived_campaign_gets_no_offers_but_hears_campaign_updated(db: Database) -> None:
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world, archived=True)
    await populate_target(db, None, world.target_id)
    assert await create_offers(db, None, campaign) == 0
    assert await _offers(db, campaign) == []
    last = (await _frames(db, campaign_topic(campaign)))[-1]
    assert last["event"] == EventName.CAMPAIGN_UPDATED and last["created"] == 0


async def test_concurrent_offer_creation_keeps_each_topic_seq_contiguous(db: Database) -> None:
    world = await make_world(db)
    await make_population(db, world, per_band=20)
    first, second = await make_campaign(db, world), await make_campaign(db, world)
    await populate_target(db, None, world.target_id)

    counts = await asyncio.gather(
        create_offers(db, None, first, batch_size=5), create_offers(db, None, second, batch_size=5)
    )

    assert list(counts) == [60, 60]
    frames = await _frames(db, marketer_topic(world.marketer_id))
    assert [frame["seq"] for frame in frames] == list(range(1, len(frames) + 1))
    created = [frame for frame in frames if frame["event"] == EventName.OFFERS_CREATED]
    assert sorted(frame["campaign_id"] for frame in created) == [first, second]
    for campaign_id in (first, second):
        seqs = [frame["seq"] for frame in await _frames(db, campaign_topic(campaign_id))]
        assert seqs == list(range(1, len(seqs) + 1))


async def test_due_offers_become_current_with_one_update_per_campaign(db: Database) -> None:
    world = await make_world(db)
    await make_population(db, world)
    due, later, archived = (
        await make_campaign(db, world),
        await make_campaign(db, world),
        await make_campaign(db, world),
    )
    await populate_target(db, None, world.target_id)
    for campaign_id in (due, later, archived):
        await create_offers(db, None, campaign_id, activation_delay=HOUR)
    now = utcnow()
    async with db.writer() as session:
        await session.execute(
            update(Offer).where(Offer.campaign_id.in_([due, archived])).values(activate_at=now)
        )
        await session.execute(
            update(Campaign).where(Campaign.id == archived).values(deactivated_at=now)
        )
        await session.commit()
    updates_before = len(await _frames(db, campaign_topic(due)))

    assert await activate_due_offers(db, None, now) == 6
    assert await activate_due_offers(db, None, now) == 0

    async with db.reader() as session:
        states = dict(
            (
                await session.execute(
                    select(Offer.campaign_id, func.count())
                    .where(Offer.state == OfferState.CURRENT)
                    .group_by(Offer.campaign_id)
                )
            ).all()
        )
    assert states == {due: 6}
    new_frames = (await _frames(db, campaign_topic(due)))[updates_before:]
    assert [(frame["event"], frame["reason"]) for frame in new_frames] == [
        (EventName.CAMPAIGN_UPDATED, UpdateReason.OFFERS_ACTIVATED)
    ]
    assert new_frames[0]["stats"]["current_offers"] == 6
    assert len(await _frames(db, campaign_topic(later))) == updates_before


async def test_offers_of_a_paused_campaign_go_live_only_once_it_is_resumed(db: Database) -> None:
    world = await make_world(db)
    await make_population(db, world)
    paused, running = await make_campaign(db, world), await make_campaign(db, world)
    await populate_target(db, None, world.target_id)
    for campaign_id in (paused, running):
        await create_offers(db, None, campaign_id, activation_delay=timedelta(0))
    actor = command_line_actor()
    await change_state(db, None, world.marketer_id, actor, paused, AuditAction.PAUSED)
    later = utcnow() + HOUR

    assert await activate_due_offers(db, None, later) == 6
    assert {offer.state for offer in await _offers(db, paused)} == {OfferState.PENDING}

    await change_state(db, None, world.marketer_id, actor, paused, AuditAction.RESUMED)
    assert await activate_due_offers(db, None, later) == 6
    assert {offer.state for offer in await _offers(db, paused)} == {OfferState.CURRENT}


async def test_the_stats_of_a_later_seq_include_the_change_of_an_earlier_one(
    db: Database,
) -> None:
    """Two writers on one campaign at once: the second's event must not carry stale stats."""
    if db.is_sqlite:
        pytest.skip("SQLite runs one writer at a time: there is no second writer to race")
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)
    await populate_target(db, None, world.target_id)
    assert await create_offers(db, None, campaign) == 6
    topic = marketer_topic(world.marketer_id)

    async def writers_waiting_for_a_lock() -> int:
        async with db.reader() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            return int(waiting or 0)

    async with db.writer() as first:
        # The first writer makes an offer current and takes its seqs, but has not committed.
        offer_id = (await _offers(db, campaign))[0].id
        await first.execute(
            update(Offer).where(Offer.id == offer_id).values(state=OfferState.CURRENT)
        )
        await eventlog.record(
            first, [PendingEvent(EventName.CAMPAIGN_UPDATED, campaign, extra={"reason": "x"})]
        )

        async def second_writer() -> None:
            async with campaign_transaction(db, None) as events:
                events.broadcast_campaign_updated(campaign, reason=UpdateReason.AD_ACTIVITY)

        second = asyncio.create_task(second_writer())
        deadline = asyncio.get_running_loop().time() + 10
        while await writers_waiting_for_a_lock() == 0:  # the second waits for the topic
            assert asyncio.get_running_loop().time() < deadline, "the second writer never waited"
            await asyncio.sleep(0.01)
        await first.commit()
    await asyncio.wait_for(second, 10)

    last = (await _frames(db, topic))[-1]
    assert last["reason"] == UpdateReason.AD_ACTIVITY
    assert last["stats"]["current_offers"] == 1
    assert last["stats"]["pending_offers"] == 5


async def _population_under_way(
    db: Database, monkeypatch: pytest.MonkeyPatch, target_id: int, go: asyncio.Event
) -> asyncio.Task[Any]:
    """A population of `target_id` in batches of 2 that has placed its first batch and places
    the rest once `go` is set; never taken for stalled."""
    place_batch = population._populate_batch
    calls = 0

    async def batches_after_go(*args: Any) -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            await go.wait()
        return await place_batch(*args)

    monkeypatch.setattr(population, "_populate_batch", batches_after_go)
    monkeypatch.setattr(offers, "POPULATION_STALL_SECONDS", 600.0)
    populating = asyncio.create_task(populate_target(db, None, target_id, batch_size=2))
    async with asyncio.timeout(60):
        while not await _placed(db, target_id):  # the first batch is in
            await asyncio.sleep(0.01)
    return populating


async def test_offers_asked_while_the_population_advances_are_created_as_it_ends(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(db)
    members = await make_population(db, world, per_band=2)
    campaign = await make_campaign(db, world)
    go = asyncio.Event()

    async def pause(seconds: float) -> None:  # the offers looked and saw the population under way
        go.set()
        await asyncio.sleep(seconds)

    monkeypatch.setattr(offers, "_pause", pause)
    populating = await _population_under_way(db, monkeypatch, world.target_id, go)

    created = await create_offers(db, None, campaign)
    await populating

    assert created == 6
    assert [offer.member_id for offer in await _offers(db, campaign)] == members[:6]


async def test_offer_jobs_beyond_the_waiting_slots_retry_later_instead_of_holding_a_slot(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(db)
    await make_population(db, world, per_band=2)
    campaign = await make_campaign(db, world)
    go = asyncio.Event()
    populating = await _population_under_way(db, monkeypatch, world.target_id, go)
    worker: dict[str, Any] = {"db": db, "publisher": None, "settings": settings}
    jobs.prepare(worker)

    def job() -> dict[str, Any]:  # as arq runs a job: with a copy of the worker's ctx
        return {**worker, "job_id": uuid.uuid4().hex, "job_try": 1}

    waiting = [
        asyncio.create_task(jobs.create_initial_pending_offers(job(), campaign))
        for _ in range(jobs.POPULATION_WAITERS)
    ]
    async with asyncio.timeout(30):
        while not worker[jobs.POPULATION_WAITERS_KEY].locked():
            await asyncio.sleep(0.01)

    async with asyncio.timeout(30):  # without a free slot it does not wait for the population
        with pytest.raises(Retry):
            await jobs.create_initial_pending_offers(job(), campaign)
    assert not any(task.done() for task in waiting)
    go.set()
    await populating
    results = await asyncio.gather(*waiting)

    assert sorted(result["created"] for result in results) == [0, 6]
    assert len(await _offers(db, campaign)) == 6

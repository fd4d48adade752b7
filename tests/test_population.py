"""Populating a target: bands, batches, re-population, status and the events campaigns hear."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from pulse_core.names import EventName, UpdateReason
from pulse_core.stats import PopulationStatus
from pulse_core.topics import campaign_topic
from pulse_data import population
from pulse_data.database import Database
from pulse_data.models import Band, MemberTag, Target, TargetPopulation
from pulse_data.population import band_level, ensure_bands, mark_populating, populate_target
from tests.factories import (
    BULLSEYE,
    RING_1,
    RING_2,
    make_campaign,
    make_members,
    make_population,
    make_world,
    stored_events,
)


async def _placement(db: Database, target_id: int) -> dict[int, int]:
    """member id -> band level."""
    async with db.reader() as session:
        rows = await session.execute(
            select(TargetPopulation.member_id, Band.level)
            .join(Band, Band.id == TargetPopulation.band_id)
            .where(TargetPopulation.target_id == target_id)
        )
        return dict(rows.all())


def test_band_level_is_the_innermost_ring_whose_groups_all_match() -> None:
    order = [0, 1, 2]
    assert band_level({0, 1, 2}, order) == 0
    assert band_level({0, 1}, order) == 1
    assert band_level({0}, order) == 2
    assert band_level({0, 2}, order) == 2
    assert band_level({1, 2}, order) is None
    assert band_level(set(), order) is None


async def test_ensure_bands_creates_one_named_band_per_trait_group_once(db: Database) -> None:
    world = await make_world(db)
    async with db.writer() as session:
        again = await ensure_bands(session, world.target_id)
        await session.commit()
        names = (
            await session.scalars(
                select(Band.name).where(Band.target_id == world.target_id).order_by(Band.level)
            )
        ).all()
    assert again == world.bands
    assert names == ["Bullseye", "Ring 1", "Ring 2"]


async def test_members_land_in_the_innermost_band_they_match(db: Database) -> None:
    world = await make_world(db)
    bullseye, ring_1, ring_2, outside, untagged = await make_members(
        db, world, [BULLSEYE, RING_1, RING_2, ("cooking", "west", "young"), ()]
    )
    result = await populate_target(db, None, world.target_id)
    assert await _placement(db, world.target_id) == {bullseye: 0, ring_1: 1, ring_2: 2}
    assert result.population == 3
    assert result.by_level == {0: 1, 1: 1, 2: 1}
    assert outside not in result.by_level and untagged not in result.by_level


async def test_small_batches_place_every_member_exactly_once(db: Database) -> None:
    world = await make_world(db)
    members = await make_population(db, world, per_band=5)
    result = await populate_target(db, None, world.target_id, batch_size=3)
    assert result.by_level == {0: 5, 1: 5, 2: 5}
    placement = await _placement(db, world.target_id)
    assert set(placement) == set(members[:15])


async def test_repopulating_moves_and_removes_members_whose_tags_changed(db: Database) -> None:
    world = await make_world(db)
    moved, dropped, kept = await make_members(db, world, [BULLSEYE, RING_2, RING_1])
    await populate_target(db, None, world.target_id, batch_size=2)
    async with db.writer() as session:
        await session.execute(
            delete(MemberTag).where(
                MemberTag.member_id == moved, MemberTag.trait_id == world.traits["young"]
            )
        )
        await session.execute(
            delete(MemberTag).where(
                MemberTag.member_id == dropped, MemberTag.trait_id == world.traits["hiking"]
            )
        )
        await session.commit()
    result = await populate_target(db, None, world.target_id, batch_size=2)
    assert await _placement(db, world.target_id) == {moved: 1, kept: 1}
    assert result.removed == 2


async def test_populating_marks_the_target_populated_with_a_time(db: Database) -> None:
    world = await make_world(db)
    await make_population(db, world)
    assert await mark_populating(db, None, world.target_id, only_if_not_populated=True)
    assert not await mark_populating(db, None, world.target_id, only_if_not_populated=True)
    async with db.reader() as session:
        target = await session.get(Target, world.target_id)
        assert target is not None and target.population_status == PopulationStatus.POPULATING
    await populate_target(db, None, world.target_id)
    async with db.reader() as session:
        target = await session.get(Target, world.target_id)
        assert target is not None
        assert target.population_status == PopulationStatus.POPULATED
        assert target.last_populated_at is not None and target.last_populated_at.tzinfo is not None
        count = await session.scalar(
            select(func.count())
            .select_from(TargetPopulation)
            .where(TargetPopulation.target_id == world.target_id)
        )
    assert count == 6


async def test_active_campaigns_hear_target_populated_and_others_campaign_updated(
    db: Database,
) -> None:
    world = await make_world(db)
    await make_population(db, world)
    active = await make_campaign(db, world)
    waiting = await make_campaign(db, world, launched=False)
    archived = await make_campaign(db, world, archived=True)
    await mark_populating(db, None, world.target_id, only_if_not_populated=True)
    await populate_target(db, None, world.target_id)

    frames = {
        campaign_id: [
            json.loads(event.frame)
            for event in await stored_events(db, campaign_topic(campaign_id))
        ]
        for campaign_id in (active, waiting, archived)
    }
    assert frames[active][-1]["event"] == EventName.TARGET_POPULATED
    assert frames[active][-1]["stats"]["target_population"] == 6
    for campaign_id in (waiting, archived):
        assert frames[campaign_id][-1]["event"] == EventName.CAMPAIGN_UPDATED
        assert frames[campaign_id][-1]["reason"] == UpdateReason.TARGET_STATUS
        assert EventName.TARGET_POPULATED not in {frame["event"] for frame in frames[campaign_id]}


async def test_a_failed_batch_stops_the_population_before_it_is_announced(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(db)
    members = await make_population(db, world, per_band=5)
    place_batch = population._populate_batch
    calls = 0

    async def failing_third_batch(*args: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("the database went away")
        return await place_batch(*args)

    monkeypatch.setattr(population, "_populate_batch", failing_third_batch)
    with pytest.raises(RuntimeError, match="went away"):
        await populate_target(db, None, world.target_id, batch_size=3)
    async with db.reader() as session:
        status = await session.scalar(
            select(Target.population_status).where(Target.id == world.target_id)
        )
    assert status == PopulationStatus.POPULATING.value

    monkeypatch.setattr(population, "_populate_batch", place_batch)
    result = await populate_target(db, None, world.target_id, batch_size=3)
    assert result.by_level == {0: 5, 1: 5, 2: 5}
    assert set(await _placement(db, world.target_id)) == set(members[:15])

"""Small builders of test data and a burst arq worker, on the real database and Redis."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from arq.worker import Worker, func, get_kwargs
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.config import Settings
from pulse_data.database import Database
from pulse_data.eventlog import RecordedEvent, frames_after
from pulse_data.models import (
    Bid,
    Campaign,
    LedgerEntry,
    Marketer,
    Member,
    MemberTag,
    Target,
    TargetTrait,
    TargetTraitGroup,
    Trait,
    TraitGroup,
    utcnow,
)
from pulse_data.population import ensure_bands
from workers.settings import create_worker, worker_settings

_names = itertools.count(1)

# The test world's trait groups in ring order: Interest is kept longest, Age is dropped first.
GROUPS = {"Interest": ("hiking", "cooking"), "Region": ("west", "east"), "Age": ("young", "old")}
ACCEPTED = {"Interest": "hiking", "Region": "west", "Age": "young"}
BIDS = ((300, 400), (200, 300), (100, 200))  # (offer amount, marketer cost) per level


@dataclass(frozen=True, slots=True)
class World:
    """A marketer with one three-group target, its bands, and the traits by name."""

    marketer_id: int
    target_id: int
    bands: dict[int, int]
    traits: dict[str, int]


async def make_traits(session: AsyncSession) -> dict[str, int]:
    """The trait groups of `GROUPS` (created once per database); trait name -> id."""
    traits: dict[str, int] = {}
    for group, values in GROUPS.items():
        group_id = await session.scalar(select(TraitGroup.id).where(TraitGroup.name == group))
        if group_id is None:
            group_id = (
                await session.execute(
                    insert(TraitGroup).values(name=group).returning(TraitGroup.id)
                )
            ).scalar_one()
        for value in values:
            trait_id = await session.scalar(
                select(Trait.id).where(Trait.trait_group_id == group_id, Trait.name == value)
            )
            if trait_id is None:
                trait_id = (
                    await session.execute(
                        insert(Trait)
                        .values(trait_group_id=group_id, name=value)
                        .returning(Trait.id)
                    )
                ).scalar_one()
            traits[value] = trait_id
    return traits


async def make_world(db: Database, name: str | None = None) -> World:
    """A marketer and a target accepting hiking / west / young, with bands."""
    async with db.writer() as session:
        traits = await make_traits(session)
        marketer_id = (
            await session.execute(
                insert(Marketer)
                .values(name=name or f"Marketer {next(_names)}")
                .returning(Marketer.id)
            )
        ).scalar_one()
        target_id = (
            await session.execute(
                insert(Target).values(marketer_id=marketer_id, title="Hikers").returning(Target.id)
            )
        ).scalar_one()
        group_ids = dict((await session.execute(select(TraitGroup.name, TraitGroup.id))).all())
        await session.execute(
            insert(TargetTraitGroup),
            [
                {"target_id": target_id, "trait_group_id": group_ids[group], "position": position}
                for position, group in enumerate(GROUPS)
            ],
        )
        await session.execute(
            insert(TargetTrait),
            [{"target_id": target_id, "trait_id": traits[value]} for value in ACCEPTED.values()],
        )
        bands = await ensure_bands(session, target_id)
        await session.commit()
    return World(marketer_id, target_id, bands, traits)


async def make_members(db: Database, world: World, tag_sets: Sequence[Sequence[str]]) -> list[int]:
    """One member per tag set (trait names); returns their ids in order."""
    ids = []
    async with db.writer() as session:
        for tags in tag_sets:
            member_id = (
                await session.execute(
                    insert(Member).values(handle=f"member-{next(_names)}").returning(Member.id)
                )
            ).scalar_one()
            if tags:
                await session.execute(
                    insert(MemberTag),
                    [{"member_id": member_id, "trait_id": world.traits[tag]} for tag in tags],
                )
            ids.append(member_id)
        await session.commit()
    return ids


async def make_campaign(
    db: Database,
    world: World,
    *,
    launched: bool = True,
    archived: bool = False,
    title: str | None = None,
) -> int:
    """A campaign on the world's target with falling bids per band and a deposit."""
    now = utcnow()
    async with db.writer() as session:
        campaign_id = (
            await session.execute(
                insert(Campaign)
                .values(
                    marketer_id=world.marketer_id,
                    target_id=world.target_id,
                    title=title or f"Campaign {next(_names)}",
                    launched_at=now - timedelta(days=1) if launched or archived else None,
                    deactivated_at=now if archived else None,
                )
                .returning(Campaign.id)
            )
        ).scalar_one()
        await session.execute(
            insert(Bid),
            [
                {
                    "campaign_id": campaign_id,
                    "band_id": world.bands[level],
                    "offer_amount_cents": amount,
                    "marketer_cost_cents": cost,
                }
                for level, (amount, cost) in enumerate(BIDS)
            ],
        )
        await session.execute(
            insert(LedgerEntry).values(
                campaign_id=campaign_id, amount_cents=100_000, description="Deposit"
            )
        )
        await session.commit()
    return campaign_id


# Tag sets that land in each band of the world's target, and two that match nothing.
BULLSEYE = ("hiking", "west", "young")
RING_1 = ("hiking", "west", "old")
RING_2 = ("hiking", "east", "young")
OUTSIDE = (("cooking", "west", "young"), ())


async def make_population(db: Database, world: World, per_band: int = 2) -> list[int]:
    """Members: `per_band` in each band and the OUTSIDE ones; returns every member id."""
    tag_sets = [BULLSEYE] * per_band + [RING_1] * per_band + [RING_2] * per_band + list(OUTSIDE)
    return await make_members(db, world, tag_sets)


async def stored_events(db: Database, topic: str) -> list[RecordedEvent]:
    async with db.reader() as session:
        return await frames_after(session, topic, 0, 10_000)


def burst_worker(settings: Settings) -> Worker:
    """A real arq worker that runs the queued jobs (cron jobs only when enqueued) and then stops."""
    kwargs: dict[str, Any] = get_kwargs(worker_settings(settings))
    periodic = [func(job.coroutine, name=job.name) for job in kwargs["cron_jobs"]]
    return create_worker(
        settings,
        functions=[*kwargs["functions"], *periodic],
        cron_jobs=[],
        burst=True,
        handle_signals=False,
        poll_delay=0.02,
    )


async def run_jobs(settings: Settings) -> int:
    """Run every queued job on a burst worker; raises arq's FailedJobs if one failed."""
    worker = burst_worker(settings)
    try:
        return await worker.run_check()
    finally:
        await worker.close()

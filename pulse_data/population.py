"""Populating a target: each matching member goes into the innermost band of the target they match.

A target's trait groups are ordered by `position`. The bullseye (level 0) needs a match in all N
groups; ring k needs the first N-k, so each outer ring drops the last remaining group. A member
matches a group when they have any of the target's accepted traits of that group.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from sqlalchemy import Select, case, delete, distinct, func, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import JOB_POPULATE_TARGET, QUEUE_NAME, UpdateReason, population_job_id
from pulse_core.stats import CampaignState, PopulationStatus, campaign_state
from pulse_data.database import Database
from pulse_data.models import (
    Band,
    Campaign,
    Member,
    MemberTag,
    Target,
    TargetPopulation,
    TargetTrait,
    TargetTraitGroup,
    Trait,
    utcnow,
)
from pulse_data.pubsub import CampaignEvents, EventPublisher, campaign_transaction
from pulse_data.sqlutil import insert_ignoring_conflicts, rowcount

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 10_000
POSTGRES_BATCHES_AT_ONCE = 2
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TargetNotFound(LookupError):
    """No target has this id."""


@dataclass(frozen=True, slots=True)
class PopulateResult:
    target_id: int
    population: int
    by_level: dict[int, int] = field(default_factory=dict)
    removed: int = 0
    campaigns_notified: int = 0
    # A population that ended after this one was asked for had done the work: this one
    # changed no status and announced nothing.
    already_done: bool = False


def band_name(level: int) -> str:
    return "Bullseye" if level == 0 else f"Ring {level}"


def band_level(matched_positions: set[int], ordered_positions: list[int]) -> int | None:
    """The innermost level whose required groups all match, or None when none does."""
    prefix = 0
    for position in ordered_positions:
        if position not in matched_positions:
            break
        prefix += 1
    return len(ordered_positions) - prefix if prefix else None


async def _group_positions(session: AsyncSession, target_id: int) -> list[int]:
    rows = await session.scalars(
        select(TargetTraitGroup.position)
        .where(TargetTraitGroup.target_id == target_id)
        .order_by(TargetTraitGroup.position, TargetTraitGroup.trait_group_id)
    )
    return list(rows)


async def ensure_bands(session: AsyncSession, target_id: int) -> dict[int, int]:
    """Create the target's missing bands (one per trait group); returns level -> band id."""
    levels = len(await _group_positions(session, target_id))
    existing = dict(
        (
            await session.execute(select(Band.level, Band.id).where(Band.target_id == target_id))
        ).all()
    )
    missing = [
        {"target_id": target_id, "level": level, "name": band_name(level)}
        for level in range(levels)
        if level not in existing
    ]
    if missing:
        await session.execute(
            insert_ignoring_conflicts(session, Band, [Band.target_id, Band.level]), missing
        )
        existing = dict(
            (
                await session.execute(
                    select(Band.level, Band.id).where(Band.target_id == target_id)
                )
            ).all()
        )
    return {int(level): int(band_id) for level, band_id in existing.items()}


async def _notify_campaigns(events: CampaignEvents, target_id: int, *, populated: bool) -> int:
    """Tell every campaign using the target; active ones hear `target_populated` when it is done."""
    rows = await events.session.execute(
        select(Campaign.id, Campaign.launched_at, Campaign.deactivated_at)
        .where(Campaign.target_id == target_id)
        .order_by(Campaign.id)
    )
    status = (PopulationStatus.POPULATED if populated else PopulationStatus.POPULATING).value
    count = 0
    for campaign_id, launched_at, deactivated_at in rows:
        active = campaign_state(launched_at, deactivated_at) is CampaignState.ACTIVE
        if populated and active:
            events.broadcast_target_populated(campaign_id)
        else:
            events.broadcast_campaign_updated(
                campaign_id, reason=UpdateReason.TARGET_STATUS, population_status=status
            )
        count += 1
    return count


async def populating_targets(session: AsyncSession) -> list[int]:
    """Ids of the targets whose status says a population is under way."""
    rows = await session.scalars(
        select(Target.id).where(Target.population_status == PopulationStatus.POPULATING.value)
    )
    return list(rows)


def population_key(last_populated_at: datetime | None) -> str:
    """Names a population of a target by the end of the one before it (`never` for the first)."""
    if last_populated_at is None:
        return "never"
    return str((last_populated_at - EPOCH) // timedelta(microseconds=1))


async def enqueue_population(db: Database, queue: ArqRedis, target_id: int) -> bool:
    """Queue the population of a target marked `populating`; True when this call queued it.

    The job's id names the population (`population_key`), so a launch, an offer job and a
    worker's start-up recovery that ask for the same population queue one job between them:
    arq refuses the same id while that job waits, runs, awaits a retry or keeps its result.
    """
    async with db.reader() as session:
        _, last = await _status(session, target_id)
    previous = population_key(last)
    job_id = population_job_id(target_id, previous)

    async def enqueue() -> bool:
        job = await queue.enqueue_job(
            JOB_POPULATE_TARGET, target_id, previous=previous, _job_id=job_id,
            _queue_name=QUEUE_NAME,
        )  # fmt: skip
        return job is not None

    if await enqueue():
        return True
    if await queue.exists(job_key_prefix + job_id):
        return False  # waiting, running or to be retried: it will populate the target
    # That job has ended. If the target still waits for this very population, the job failed
    # (it gave up after its tries): forget its result so the population can run again.
    async with db.reader() as session:
        status, last = await _status(session, target_id)
    if status != PopulationStatus.POPULATING.value or population_key(last) != previous:
        return False
    await queue.delete(result_key_prefix + job_id)
    return await enqueue()


async def mark_populating(
    db: Database, publisher: EventPublisher | None, target_id: int, *, only_if_not_populated: bool
) -> bool:
    """Set the target `populating` and commit; True when this call changed its status."""
    async with campaign_transaction(db, publisher) as events:
        session = events.session
        if await session.scalar(select(Target.id).where(Target.id == target_id)) is None:
            raise TargetNotFound(target_id)
        from_statuses = [PopulationStatus.NOT_POPULATED.value]
        if not only_if_not_populated:
            from_statuses.append(PopulationStatus.POPULATED.value)
        changed = rowcount(
            await session.execute(
                update(Target)
                .where(Target.id == target_id, Target.population_status.in_(from_statuses))
                .values(population_status=PopulationStatus.POPULATING.value)
            )
        )
        await ensure_bands(session, target_id)
        if changed:
            await _notify_campaigns(events, target_id, populated=False)
        return changed == 1


async def _status(
    session: AsyncSession, target_id: int, *, lock: bool = False
) -> tuple[str, datetime | None]:
    """The target's population status and the end of its last population."""
    query = select(Target.population_status, Target.last_populated_at).where(Target.id == target_id)
    row = (await session.execute(query.with_for_update() if lock else query)).first()
    if row is None:
        raise TargetNotFound(target_id)
    return row[0], row[1]


async def _begin(
    db: Database, publisher: EventPublisher | None, target_id: int, previous: str | None
) -> bool:
    """Mark the target populating, unless a population ended after `previous`: False then."""

    def answered(last_populated_at: datetime | None) -> bool:
        return previous is not None and population_key(last_populated_at) != previous

    # A population's end is final: once seen, nothing needs locking (or waiting for) to skip.
    async with db.reader() as session:
        status, last_populated_at = await _status(session, target_id)
    if answered(last_populated_at):
        return False
    if status == PopulationStatus.POPULATING.value:
        return True
    async with campaign_transaction(db, publisher) as events:
        status, last_populated_at = await _status(events.session, target_id, lock=True)
        if answered(last_populated_at):
            return False
        if status != PopulationStatus.POPULATING.value:
            await events.session.execute(
                update(Target)
                .where(Target.id == target_id)
                .values(population_status=PopulationStatus.POPULATING.value)
            )
            await _notify_campaigns(events, target_id, populated=False)
        return True


async def _ring_groups(session: AsyncSession, target_id: int) -> list[int]:
    """The target's trait group ids in ring order: the bullseye needs all, ring k the first N-k."""
    rows = await session.scalars(
        select(TargetTraitGroup.trait_group_id)
        .where(TargetTraitGroup.target_id == target_id)
        .order_by(TargetTraitGroup.position, TargetTraitGroup.trait_group_id)
    )
    return list(rows)


def _placements(
    target_id: int,
    groups: list[int],
    band_of_level: dict[int, int],
    in_range: list[Any],
    dialect: str,
) -> Select[Any]:
    """(target_id, band_id, member_id) of each member in range that a band takes, in SQL.

    Group i (in ring order) is bit i of a member's mask of matched groups; the member's band
    is `band_level`'s: with the first t groups matched and not group t, level N - t.
    """
    bit = case({group_id: 1 << i for i, group_id in enumerate(groups)}, value=Trait.trait_group_id)
    # SQLite would read every member's tags of an accepted trait for each batch (its index on
    # the tags' trait): `+ 0` leaves it the batch's id range. PostgreSQL combines both indexes.
    tag_trait = MemberTag.trait_id + 0 if dialect == "sqlite" else MemberTag.trait_id
    matched = (
        select(MemberTag.member_id.label("member_id"), func.sum(distinct(bit)).label("mask"))
        .join(Trait, Trait.id == tag_trait)
        .join(
            TargetTrait,
            (TargetTrait.trait_id == tag_trait) & (TargetTrait.target_id == target_id),
        )
        .where(Trait.trait_group_id.in_(groups), *in_range)
        .group_by(MemberTag.member_id)
        .subquery()
    )
    levels = len(groups)
    rings = [
        (matched.c.mask.bitwise_and(1 << matched_count) == 0, band_of_level[levels - matched_count])
        for matched_count in range(1, levels)
    ]
    # One group only: whoever matched it is in the bullseye (a CASE needs at least one WHEN).
    band = case(*rings, else_=band_of_level[0]) if rings else literal(band_of_level[0])
    return select(
        literal(target_id).label("target_id"), band.label("band_id"), matched.c.member_id
    ).where(
        matched.c.mask.bitwise_and(1) != 0  # group 0 unmatched: in no band
    )


async def _boundary(session: AsyncSession, after: int, batch_size: int) -> int | None:
    """The id of the last member of the batch after `after`; None: the rest are one batch."""
    upto = await session.scalar(
        select(Member.id)
        .where(Member.id > after)
        .order_by(Member.id)
        .offset(batch_size - 1)
        .limit(1)
    )
    return None if upto is None else int(upto)


async def _populate_batch(
    session: AsyncSession,
    target_id: int,
    groups: list[int],
    band_of_level: dict[int, int],
    after: int,
    upto: int | None,
) -> int:
    """Place the members with ids in (after, upto]; returns how many rows it removed.

    The bands are computed and written by the database (one INSERT ... SELECT): no member's
    tags travel to this process.
    """
    in_range = [MemberTag.member_id > after]
    existing_range = [TargetPopulation.target_id == target_id, TargetPopulation.member_id > after]
    if upto is not None:
        in_range.append(MemberTag.member_id <= upto)
        existing_range.append(TargetPopulation.member_id <= upto)
    dialect = session.get_bind().dialect.name
    placements = (
        _placements(target_id, groups, band_of_level, in_range, dialect) if groups else None
    )

    removed = 0
    if await session.scalar(select(TargetPopulation.id).where(*existing_range).limit(1)):
        stale = delete(TargetPopulation).where(*existing_range)
        if placements is not None:  # keep the members whose band stays the same
            placed = placements.subquery()
            kept = select(placed.c.member_id, placed.c.band_id)
            stale = stale.where(
                tuple_(TargetPopulation.member_id, TargetPopulation.band_id).not_in(kept)
            )
        removed = rowcount(await session.execute(stale))
    if placements is not None:
        await session.execute(
            insert_ignoring_conflicts(session, TargetPopulation).from_select(
                ["target_id", "band_id", "member_id"], placements
            )
        )
    return removed


async def populate_target(
    db: Database,
    publisher: EventPublisher | None,
    target_id: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    previous: str | None = None,
) -> PopulateResult:
    """Replace the target's population batch by batch, then mark it populated and tell campaigns.

    `previous` is the `population_key` of the target when this population was asked for: if a
    population has ended since, it answered this request, and nothing is done or announced.
    """
    if not await _begin(db, publisher, target_id, previous):
        log.info("target %d was populated after this population was asked for", target_id)
        return PopulateResult(target_id, 0, already_done=True)
    async with db.reader() as session:
        groups = await _ring_groups(session, target_id)
    async with db.writer() as session:
        band_of_level = await ensure_bands(session, target_id)
        await session.commit()

    # PostgreSQL writes batches side by side (most of a batch is its foreign key checks and
    # index updates, on one core each); SQLite has one writer at a time.
    slots = asyncio.Semaphore(1 if db.is_sqlite else POSTGRES_BATCHES_AT_ONCE)
    removed = 0

    async def place(after: int, upto: int | None) -> None:
        nonlocal removed
        try:
            async with db.writer() as session:
                stale = await _populate_batch(
                    session, target_id, groups, band_of_level, after, upto
                )
                await session.commit()
            removed += stale  # not `removed += await ...`: batches run side by side
        finally:
            slots.release()

    try:
        async with asyncio.TaskGroup() as batches:
            after: int | None = 0
            while after is not None:
                async with db.reader() as session:
                    upto = await _boundary(session, after, batch_size)
                await slots.acquire()
                batches.create_task(place(after, upto))
                after = upto
    except ExceptionGroup as failed:  # a batch failed (the others were cancelled): its error
        raise failed.exceptions[0] from None

    async with campaign_transaction(db, publisher) as events:
        session = events.session
        finished = await session.execute(
            update(Target)
            .where(
                Target.id == target_id,
                Target.population_status == PopulationStatus.POPULATING.value,
            )
            .values(population_status=PopulationStatus.POPULATED.value, last_populated_at=utcnow())
        )
        if rowcount(finished) == 0:
            log.info("target %d: another population ended first and announced it", target_id)
            return PopulateResult(target_id, 0, removed=removed, already_done=True)
        counts = await session.execute(
            select(Band.level, func.count(TargetPopulation.id))
            .join(TargetPopulation, TargetPopulation.band_id == Band.id)
            .where(Band.target_id == target_id)
            .group_by(Band.level)
        )
        by_level = {int(level): int(count) for level, count in counts}
        notified = await _notify_campaigns(events, target_id, populated=True)
    result = PopulateResult(target_id, sum(by_level.values()), by_level, removed, notified)
    log.info(
        "populated target %d: %d members %s, %d removed, %d campaigns told",
        target_id,
        result.population,
        by_level,
        removed,
        notified,
    )
    return result

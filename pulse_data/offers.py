"""Creating a campaign's pending offers and making due offers current."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import UpdateReason
from pulse_core.stats import PopulationStatus
from pulse_data.database import Database
from pulse_data.models import Bid, Campaign, Offer, OfferState, Target, TargetPopulation, utcnow
from pulse_data.pubsub import EventPublisher, campaign_transaction
from pulse_data.sqlutil import insert_ignoring_conflicts, rowcount

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 10_000
# Waiting for a population under way (`population_ends`): how often to look, how long it may
# go without placing anyone new, and the most to wait before leaving it to the job's retries.
POPULATION_POLL_SECONDS = 0.2
POPULATION_STALL_SECONDS = 2.0
_pause = asyncio.sleep  # between two looks (a test looks in between)
POPULATION_MAX_WAIT_SECONDS = 60.0


class TargetStillPopulating(Exception):
    """The campaign's target is being populated; try again shortly."""

    def __init__(self, target_id: int) -> None:
        super().__init__(f"target {target_id} is still populating; retry when it is populated")
        self.target_id = target_id


class TargetNotPopulated(Exception):
    """The campaign's target was never populated; populate it, then try again."""

    def __init__(self, target_id: int) -> None:
        super().__init__(f"target {target_id} is not populated; populate it first")
        self.target_id = target_id


async def _insert_batch(
    session: AsyncSession,
    campaign_id: int,
    target_id: int,
    after: int,
    batch_size: int,
    now: datetime,
    activate_at: datetime,
) -> tuple[int | None, int]:
    """Offer to the members with ids in (after, next boundary]; returns (boundary, inserted)."""
    upto = await session.scalar(
        select(TargetPopulation.member_id)
        .where(TargetPopulation.target_id == target_id, TargetPopulation.member_id > after)
        .order_by(TargetPopulation.member_id)
        .offset(batch_size - 1)
        .limit(1)
    )
    conditions = [TargetPopulation.target_id == target_id, TargetPopulation.member_id > after]
    if upto is not None:
        conditions.append(TargetPopulation.member_id <= upto)
    source = (
        select(
            literal(campaign_id),
            TargetPopulation.member_id,
            TargetPopulation.band_id,
            Bid.offer_amount_cents,
            Bid.marketer_cost_cents,
            literal(OfferState.PENDING),
            literal(now, Offer.created_at.type),
            literal(activate_at, Offer.activate_at.type),
        )
        .join(Bid, (Bid.band_id == TargetPopulation.band_id) & (Bid.campaign_id == campaign_id))
        .where(*conditions)
    )
    statement = insert_ignoring_conflicts(
        session, Offer, [Offer.campaign_id, Offer.member_id]
    ).from_select(
        [
            Offer.campaign_id,
            Offer.member_id,
            Offer.band_id,
            Offer.offer_amount_cents,
            Offer.marketer_cost_cents,
            Offer.state,
            Offer.created_at,
            Offer.activate_at,
        ],
        source,
    )
    inserted = rowcount(await session.execute(statement))  # no id per offer back over the wire
    return (None if upto is None else int(upto)), inserted


async def create_offers(
    db: Database,
    publisher: EventPublisher | None,
    campaign_id: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    activation_delay: timedelta = timedelta(seconds=5),
    request_id: str | None = None,
    actor: dict[str, Any] | None = None,
    wait_for_population: bool = True,
) -> int:
    """Create a pending offer for every populated member of the campaign's target that has none.

    All batches and the events are one transaction, so a retry after a crash counts exactly.
    `actor` (`{"id", "name"}`), the person who launched or refreshed, goes into the events.
    `wait_for_population`: first wait, as `population_ends`, for a population under way.
    Returns how many offers were inserted.
    """
    extra: dict[str, Any] = {"request_id": request_id} if request_id else {}
    if actor:
        extra["actor"] = actor
    if wait_for_population:
        await population_ends(db, campaign_id)
    async with campaign_transaction(db, publisher) as events:
        session = events.session
        row = (
            await session.execute(
                select(Campaign.target_id, Campaign.deactivated_at).where(
                    Campaign.id == campaign_id
                )
            )
        ).first()
        if row is None:
            log.warning("campaign %d does not exist: no offers created", campaign_id)
            return 0
        target_id, deactivated_at = row
        count = 0
        if deactivated_at is None:
            status = await session.scalar(
                select(Target.population_status)
                .where(Target.id == target_id)
                .with_for_update(read=True)
            )
            if status == PopulationStatus.POPULATING.value:
                raise TargetStillPopulating(target_id)
            if status != PopulationStatus.POPULATED.value:
                raise TargetNotPopulated(target_id)
            now = utcnow()
            after: int | None = 0
            while after is not None:
                after, inserted = await _insert_batch(
                    session, campaign_id, target_id, after, batch_size, now, now + activation_delay
                )
                count += inserted
        if count > 0:
            events.broadcast_offers_created(campaign_id, count, **extra)
        events.broadcast_campaign_updated(
            campaign_id, reason=UpdateReason.OFFERS_REFRESHED, created=count, **extra
        )
    log.info("campaign %d: %d offers created", campaign_id, count)
    return count


async def population_ends(db: Database, campaign_id: int) -> None:
    """Wait while the campaign's target is being populated and the population advances.

    A launch's offer job finds the target populating; its retries wait longer each time (up
    to seconds), so it would start up to that long after the population ends. Waiting here,
    the offers start as it ends. A population that has placed nobody yet, or nobody new for
    POPULATION_STALL_SECONDS (not started, its worker gone, or placing members already in),
    is left to the job's retries, as is one still running after the longest wait.
    """
    placed_q = (
        select(func.max(TargetPopulation.member_id))
        .where(TargetPopulation.target_id == Target.id)
        .scalar_subquery()
    )
    query = (
        select(Target.population_status, placed_q)
        .join(Campaign, Campaign.target_id == Target.id)
        .where(Campaign.id == campaign_id)
    )
    started = advanced = time.monotonic()
    reached = None
    while time.monotonic() - started < POPULATION_MAX_WAIT_SECONDS:
        async with db.reader() as session:
            row = (await session.execute(query)).first()
        if row is None or row[0] != PopulationStatus.POPULATING.value or row[1] is None:
            return
        if row[1] != reached:
            reached, advanced = row[1], time.monotonic()
        elif time.monotonic() - advanced > POPULATION_STALL_SECONDS:
            return
        await _pause(POPULATION_POLL_SECONDS)


async def activate_due_offers(
    db: Database, publisher: EventPublisher | None, now: datetime | None = None
) -> int:
    """Make every due pending offer of an active campaign current; returns how many.

    Offers of a paused campaign wait until it is resumed; an archived campaign's never go live.
    """
    moment = now or utcnow()
    async with campaign_transaction(db, publisher) as events:
        live_campaigns = select(Campaign.id).where(
            Campaign.deactivated_at.is_(None), Campaign.paused_at.is_(None)
        )
        touched = (
            await events.session.scalars(
                update(Offer)
                .where(
                    Offer.state == OfferState.PENDING,
                    Offer.activate_at <= moment,
                    Offer.campaign_id.in_(live_campaigns),
                )
                .values(state=OfferState.CURRENT)
                .returning(Offer.campaign_id)
            )
        ).all()
        for campaign_id in sorted(set(touched)):
            events.broadcast_campaign_updated(campaign_id, reason=UpdateReason.OFFERS_ACTIVATED)
    if touched:
        log.info("activated %d offers of %d campaigns", len(touched), len(set(touched)))
    return len(touched)

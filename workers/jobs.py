"""The arq jobs: each takes its shared clients from arq's `ctx`, calls `pulse_data`, and logs."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from arq import Retry

from pulse_core.config import Settings
from pulse_data import audit, eventlog, offers, population, traffic
from pulse_data.database import Database
from pulse_data.models import utcnow
from pulse_data.pubsub import EventPublisher

log = logging.getLogger(__name__)

Ctx = dict[str, Any]

# Events younger than this may still be on their way from the process that committed them.
RELAY_MIN_AGE = timedelta(seconds=2)
RELAY_BATCH = 500
RELAY_MAX_BATCHES = 20
MAX_POPULATE_WAIT_SECONDS = 5.0
# How many of a worker's job slots may wait for a population under way (each for up to
# `offers.POPULATION_MAX_WAIT_SECONDS`): more launches on populating targets retry later instead
# of holding the slots that activations, relays and emails need.
POPULATION_WAITERS = 2
POPULATION_WAITERS_KEY = "population_waiters"


def prepare(ctx: Ctx) -> None:
    """Put what one worker's jobs share in its `ctx`, at start-up: arq gives each job a copy of
    that `ctx`, so whatever a job adds to its own is gone when it ends."""
    ctx[POPULATION_WAITERS_KEY] = asyncio.Semaphore(POPULATION_WAITERS)


def _clients(ctx: Ctx) -> tuple[Database, EventPublisher, Settings]:
    return ctx["db"], ctx["publisher"], ctx["settings"]


def _retry_delay(ctx: Ctx, settings: Settings) -> float:
    """Wait a little longer on each try, so a long population is not polled too often."""
    tries = int(ctx.get("job_try", 1))
    return min(settings.populate_retry_seconds * tries, MAX_POPULATE_WAIT_SECONDS)


async def populate_target(ctx: Ctx, target_id: int, previous: str | None = None) -> dict[str, Any]:
    """Populate a target once per request, however often the job runs (see `enqueue_population`)."""
    db, publisher, settings = _clients(ctx)
    result = await population.populate_target(
        db, publisher, target_id, batch_size=settings.populate_batch_size, previous=previous
    )
    if result.already_done:
        return {"target_id": target_id, "already_done": True}
    return {
        "target_id": target_id,
        "population": result.population,
        "by_level": result.by_level,
        "campaigns_notified": result.campaigns_notified,
    }


async def create_initial_pending_offers(
    ctx: Ctx,
    campaign_id: int,
    request_id: str | None = None,
    actor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    db, publisher, settings = _clients(ctx)
    waiters: asyncio.Semaphore = ctx[POPULATION_WAITERS_KEY]
    if not waiters.locked():  # else its retries wait, without holding this slot meanwhile
        async with waiters:
            await offers.population_ends(db, campaign_id)
    try:
        created = await offers.create_offers(
            db,
            publisher,
            campaign_id,
            batch_size=settings.offer_batch_size,
            activation_delay=timedelta(seconds=settings.offer_activation_delay_seconds),
            request_id=request_id,
            actor=actor,
            wait_for_population=False,
        )
    except offers.TargetStillPopulating as exc:
        log.info("campaign %d waits for target %d to populate", campaign_id, exc.target_id)
        raise Retry(defer=_retry_delay(ctx, settings)) from exc
    except offers.TargetNotPopulated as exc:
        if await population.mark_populating(
            db, publisher, exc.target_id, only_if_not_populated=True
        ):
            await population.enqueue_population(db, ctx["redis"], exc.target_id)
            log.info(
                "campaign %d: target %d was not populated; populating it",
                campaign_id,
                exc.target_id,
            )
        raise Retry(defer=_retry_delay(ctx, settings)) from exc
    return {"campaign_id": campaign_id, "created": created}


async def activate_pending_offers(ctx: Ctx) -> dict[str, Any]:
    db, publisher, _ = _clients(ctx)
    return {"activated": await offers.activate_due_offers(db, publisher, utcnow())}


async def demo_traffic(ctx: Ctx) -> dict[str, Any]:
    db, publisher, _ = _clients(ctx)
    result = await traffic.simulate_ad_activity(db, publisher, rng=ctx["rng"])
    return {
        "banner_views": result.banner_views,
        "text_jumps": result.text_jumps,
        "completions": result.completions,
        "campaigns": result.campaigns,
    }


async def relay_unpublished_events(ctx: Ctx) -> dict[str, Any]:
    """Publish committed events whose publishing failed (Redis was down, or a process died)."""
    db, publisher, _ = _clients(ctx)
    relayed = 0
    for _ in range(RELAY_MAX_BATCHES):
        async with db.reader() as session:
            events = await eventlog.unpublished(
                session, created_before=utcnow() - RELAY_MIN_AGE, limit=RELAY_BATCH
            )
        if not events or not await publisher.publish(events):
            break
        relayed += len(events)
        if len(events) < RELAY_BATCH:
            break
    if relayed:
        log.info("relayed %d events that had not been published", relayed)
    return {"relayed": relayed}


async def prune_event_log(ctx: Ctx) -> dict[str, Any]:
    db, _, settings = _clients(ctx)
    cutoff = utcnow() - timedelta(days=settings.event_retention_days)
    async with db.writer() as session:
        pruned = await eventlog.prune(session, cutoff)
        await session.commit()
    log.info("pruned %d published events older than %s", pruned, cutoff.isoformat())
    return {"pruned": pruned}


async def prune_audit_trail(ctx: Ctx) -> dict[str, Any]:
    """Forget audit entries older than `PULSE_AUDIT_RETENTION_DAYS`; unset keeps them all."""
    db, _, settings = _clients(ctx)
    if settings.audit_retention_days is None:
        return {"pruned": 0}
    cutoff = utcnow() - timedelta(days=settings.audit_retention_days)
    async with db.writer() as session:
        pruned = await audit.prune(session, cutoff)
        await session.commit()
    log.info("pruned %d audit entries older than %s", pruned, cutoff.isoformat())
    return {"pruned": pruned}


async def recover_interrupted_populations(ctx: Ctx) -> list[int]:
    """Re-queue the populations of targets left populating whose job is gone; returns their ids.

    A job lost with a Redis that kept nothing, or one that gave up, is queued again. A job
    still waiting, running, or held by a dead worker's lease keeps its id, so nothing is
    queued twice: that job populates the target once its turn (or the lease) comes.
    """
    db: Database = ctx["db"]
    async with db.reader() as session:
        populating = await population.populating_targets(session)
    requeued = [
        target_id
        for target_id in populating
        if await population.enqueue_population(db, ctx["redis"], target_id)
    ]
    if requeued:
        log.warning("re-queued population of targets %s, left populating", requeued)
    return requeued

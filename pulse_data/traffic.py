"""Demo traffic: members see banners, jump to texts and complete offers, so stats move alone.

The demo is just another sender: it picks current offers of active campaigns and sends ad
events for them through `pulse_data.ingest`, the code path of the ingestion API.
"""

from __future__ import annotations

import logging
import math
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from pulse_core.names import ActorKind
from pulse_data.audit import Actor
from pulse_data.database import Database
from pulse_data.ingest import COMPLETION_DESCRIPTION, IngestRejected, IngestResult, ingest
from pulse_data.models import AdEventKind, Campaign, Offer, OfferState, utcnow
from pulse_data.pubsub import EventPublisher

__all__ = ["COMPLETION_DESCRIPTION", "DEMO_SENDER", "TrafficResult", "simulate_ad_activity"]

log = logging.getLogger(__name__)

KIND_WEIGHTS = {AdEventKind.BANNER_VIEW: 80, AdEventKind.TEXT_JUMP: 15, AdEventKind.COMPLETION: 5}
DEMO_SENDER = Actor(ActorKind.SYSTEM, None, "demo traffic")
_SAMPLE_MODULUS = 1009


@dataclass(frozen=True, slots=True)
class TrafficResult:
    banner_views: int = 0
    text_jumps: int = 0
    completions: int = 0
    campaigns: int = 0


async def _pick_offers(db: Database, rng: random.Random, max_offers: int) -> list[tuple[int, int]]:
    """Up to `max_offers` (offer id, marketer id) of current offers of active campaigns."""
    conditions = (
        Offer.state == OfferState.CURRENT,
        Campaign.launched_at.is_not(None),
        Campaign.deactivated_at.is_(None),
        Campaign.paused_at.is_(None),
    )
    async with db.reader() as session:
        live_count = await session.scalar(
            select(func.count(Offer.id))
            .join(Campaign, Campaign.id == Offer.campaign_id)
            .where(*conditions)
        )
        if not live_count:
            return []
        # A hash of the id chosen by the rng samples about 2 * max_offers rows in one scan,
        # spread over every campaign.
        threshold = math.ceil(_SAMPLE_MODULUS * min(1.0, 2 * max_offers / live_count))
        factor = rng.randrange(1, _SAMPLE_MODULUS)
        shift = rng.randrange(_SAMPLE_MODULUS)
        sample = (
            select(Offer.id, Campaign.marketer_id)
            .join(Campaign, Campaign.id == Offer.campaign_id)
            .where(*conditions, (Offer.id * factor + shift) % _SAMPLE_MODULUS < threshold)
            .order_by(Offer.id)
            .limit(max_offers * 4)
        )
        window = [(row.id, row.marketer_id) for row in await session.execute(sample)]
    return rng.sample(window, min(max_offers, len(window)))


async def _send(
    db: Database, publisher: EventPublisher | None, marketer_id: int, events: list[dict[str, Any]]
) -> IngestResult:
    """Send like an ad server; an offer that changed since it was picked is left out."""
    try:
        return await ingest(db, publisher, marketer_id, DEMO_SENDER, events)
    except IngestRejected as rejected:
        bad = {problem.index for problem in rejected.problems}
        kept = [event for index, event in enumerate(events) if index not in bad]
    try:
        return (
            await ingest(db, publisher, marketer_id, DEMO_SENDER, kept) if kept else IngestResult()
        )
    except IngestRejected as rejected:
        log.info("demo traffic skipped a batch: %s", rejected)
        return IngestResult()


async def simulate_ad_activity(
    db: Database,
    publisher: EventPublisher | None,
    *,
    rng: random.Random,
    max_offers: int = 40,
) -> TrafficResult:
    """Send one ad event for each of up to `max_offers` current offers of active campaigns."""
    chosen = await _pick_offers(db, rng, max_offers)
    kinds = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()), k=len(chosen))
    at = utcnow()
    by_marketer: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for (offer_id, marketer_id), kind in zip(chosen, kinds, strict=True):
        by_marketer[marketer_id].append(
            {"id": f"demo-{uuid.uuid4()}", "offer_id": offer_id, "kind": kind, "at": at}
        )
    results = [
        await _send(db, publisher, marketer_id, events)
        for marketer_id, events in sorted(by_marketer.items())
    ]
    result = TrafficResult(
        banner_views=sum(r.banner_views for r in results),
        text_jumps=sum(r.text_jumps for r in results),
        completions=sum(r.completions for r in results),
        campaigns=sum(len(r.campaign_ids) for r in results),
    )
    log.debug("demo traffic: %s", result)
    return result

"""Demo traffic: members see banners, jump to texts and complete offers, so stats move alone."""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update

from pulse_core.names import UpdateReason
from pulse_data.database import Database
from pulse_data.models import AdEvent, AdEventKind, Campaign, LedgerEntry, Offer, OfferState, utcnow
from pulse_data.pubsub import EventPublisher, campaign_transaction
from pulse_data.sqlutil import table

log = logging.getLogger(__name__)

KIND_WEIGHTS = {AdEventKind.BANNER_VIEW: 80, AdEventKind.TEXT_JUMP: 15, AdEventKind.COMPLETION: 5}
COMPLETION_DESCRIPTION = "Offer completed"
_SAMPLE_MODULUS = 1009


@dataclass(frozen=True, slots=True)
class TrafficResult:
    banner_views: int = 0
    text_jumps: int = 0
    completions: int = 0
    campaigns: int = 0


async def simulate_ad_activity(
    db: Database,
    publisher: EventPublisher | None,
    *,
    rng: random.Random,
    max_offers: int = 40,
) -> TrafficResult:
    """Write ad events for up to `max_offers` current offers of active campaigns."""
    async with campaign_transaction(db, publisher) as events:
        session = events.session
        conditions = (
            Offer.state == OfferState.CURRENT,
            Campaign.launched_at.is_not(None),
            Campaign.deactivated_at.is_(None),
        )
        live = (
            select(Offer.id, Offer.campaign_id, Offer.member_id, Offer.marketer_cost_cents)
            .join(Campaign, Campaign.id == Offer.campaign_id)
            .where(*conditions)
        )
        live_count = await session.scalar(
            select(func.count(Offer.id))
            .join(Campaign, Campaign.id == Offer.campaign_id)
            .where(*conditions)
        )
        if not live_count:
            return TrafficResult()
        # A hash of the id chosen by the rng samples about 2 * max_offers rows in one scan,
        # spread over every campaign.
        threshold = math.ceil(_SAMPLE_MODULUS * min(1.0, 2 * max_offers / live_count))
        factor = rng.randrange(1, _SAMPLE_MODULUS)
        shift = rng.randrange(_SAMPLE_MODULUS)
        sample = (
            live.where((Offer.id * factor + shift) % _SAMPLE_MODULUS < threshold)
            .order_by(Offer.id)
            .limit(max_offers * 4)
        )
        window = list((await session.execute(sample)).all())
        chosen = rng.sample(window, min(max_offers, len(window)))
        kinds = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()), k=len(chosen))

        completing = [
            offer.id
            for offer, kind in zip(chosen, kinds, strict=True)
            if kind == AdEventKind.COMPLETION
        ]
        completed: set[int] = set()
        if completing:
            completed = set(
                (
                    await session.scalars(
                        update(Offer)
                        .where(Offer.id.in_(completing), Offer.state == OfferState.CURRENT)
                        .values(state=OfferState.COMPLETED)
                        .returning(Offer.id)
                    )
                ).all()
            )
        now = utcnow()
        ad_rows = []
        ledger_rows = []
        for offer, kind in zip(chosen, kinds, strict=True):
            if kind == AdEventKind.COMPLETION and offer.id not in completed:
                continue
            cost = offer.marketer_cost_cents if kind == AdEventKind.COMPLETION else 0
            ad_rows.append(
                {
                    "campaign_id": offer.campaign_id,
                    "offer_id": offer.id,
                    "member_id": offer.member_id,
                    "kind": kind,
                    "cost_cents": cost,
                    "created_at": now,
                }
            )
            if kind == AdEventKind.COMPLETION:
                ledger_rows.append(
                    {
                        "campaign_id": offer.campaign_id,
                        "amount_cents": -cost,
                        "description": COMPLETION_DESCRIPTION,
                        "created_at": now,
                    }
                )
        if ad_rows:
            await session.execute(insert(table(AdEvent)), ad_rows)
        if ledger_rows:
            await session.execute(insert(table(LedgerEntry)), ledger_rows)
        touched = sorted({row["campaign_id"] for row in ad_rows})
        for campaign_id in touched:
            events.broadcast_campaign_updated(campaign_id, reason=UpdateReason.AD_ACTIVITY)
    kinds_written = [row["kind"] for row in ad_rows]
    result = TrafficResult(
        banner_views=kinds_written.count(AdEventKind.BANNER_VIEW),
        text_jumps=kinds_written.count(AdEventKind.TEXT_JUMP),
        completions=kinds_written.count(AdEventKind.COMPLETION),
        campaigns=len(touched),
    )
    log.debug("demo traffic: %s", result)
    return result

"""Campaign stats computed in SQL: four grouped queries for any number of campaigns."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.stats import BandCount, CampaignStats, cents_to_amount
from pulse_data.models import (
    AdEvent,
    AdEventKind,
    Band,
    Campaign,
    LedgerEntry,
    Offer,
    OfferState,
    TargetPopulation,
)


def _scope(
    query: Any, column: Any, campaign_ids: Collection[int] | None, marketer_id: int | None
) -> Any:
    if campaign_ids is not None:
        return query.where(column.in_(list(campaign_ids)))
    if marketer_id is not None:
        ids = select(Campaign.id).where(Campaign.marketer_id == marketer_id)
        return query.where(column.in_(ids))
    raise ValueError("give campaign_ids or marketer_id")


async def campaign_stats(
    session: AsyncSession,
    *,
    campaign_ids: Collection[int] | None = None,
    marketer_id: int | None = None,
) -> dict[int, CampaignStats]:
    """Stats of the given campaigns (or of all of one marketer's), keyed by campaign id."""
    campaigns_q = select(Campaign.id, Campaign.target_id)
    if campaign_ids is None:
        campaigns_q = campaigns_q.where(Campaign.marketer_id == marketer_id)
    else:
        campaigns_q = campaigns_q.where(Campaign.id.in_(list(campaign_ids)))
    target_of = {row.id: row.target_id for row in await session.execute(campaigns_q)}
    if not target_of:
        return {}

    bands_q = (
        select(Band.id, Band.target_id, Band.level, Band.name, func.count(TargetPopulation.id))
        .outerjoin(TargetPopulation, TargetPopulation.band_id == Band.id)
        .where(Band.target_id.in_(set(target_of.values())))
        .group_by(Band.id, Band.target_id, Band.level, Band.name)
        .order_by(Band.target_id, Band.level)
    )
    bands_of: dict[int, list[BandCount]] = defaultdict(list)
    for band_id, target_id, level, name, population in await session.execute(bands_q):
        bands_of[target_id].append(BandCount(band_id, level, name, population))

    offers_q = _scope(
        select(
            Offer.campaign_id,
            Offer.state,
            func.count(Offer.id),
            func.coalesce(func.sum(Offer.marketer_cost_cents), 0),
        ).group_by(Offer.campaign_id, Offer.state),
        Offer.campaign_id,
        campaign_ids,
        marketer_id,
    )
    offers: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for campaign_id, state, count, cost in await session.execute(offers_q):
        offers[campaign_id][state] = (count, int(cost))

    ads_q = _scope(
        select(
            AdEvent.campaign_id,
            func.count(distinct(AdEvent.member_id)),
            func.sum(case((AdEvent.kind == AdEventKind.BANNER_VIEW, 1), else_=0)),
            func.sum(case((AdEvent.kind == AdEventKind.TEXT_JUMP, 1), else_=0)),
            func.coalesce(func.sum(AdEvent.cost_cents), 0),
        ).group_by(AdEvent.campaign_id),
        AdEvent.campaign_id,
        campaign_ids,
        marketer_id,
    )
    ads = {row[0]: row[1:] for row in await session.execute(ads_q)}

    ledger_q = _scope(
        select(LedgerEntry.campaign_id, func.sum(LedgerEntry.amount_cents)).group_by(
            LedgerEntry.campaign_id
        ),
        LedgerEntry.campaign_id,
        campaign_ids,
        marketer_id,
    )
    ledger = {
        campaign_id: int(total or 0) for campaign_id, total in await session.execute(ledger_q)
    }

    result: dict[int, CampaignStats] = {}
    for campaign_id, target_id in target_of.items():
        by_state = offers.get(campaign_id, {})
        pending_count, pending_cost = by_state.get(OfferState.PENDING, (0, 0))
        current_count, current_cost = by_state.get(OfferState.CURRENT, (0, 0))
        completed_count, _ = by_state.get(OfferState.COMPLETED, (0, 0))
        reach, views, jumps, spent = ads.get(campaign_id, (0, 0, 0, 0))
        bands = tuple(bands_of.get(target_id, ()))
        result[campaign_id] = CampaignStats(
            target_population=sum(band.population for band in bands),
            pending_offers=pending_count,
            current_offers=current_count,
            completed_offers=completed_count,
            pending_spend=cents_to_amount(pending_cost + current_cost),
            spend_to_date=cents_to_amount(int(spent or 0)),
            balance=cents_to_amount(ledger.get(campaign_id, 0)),
            unique_reach=int(reach or 0),
            banner_views=int(views or 0),
            text_jumps=int(jumps or 0),
            bands=bands,
        )
    return result

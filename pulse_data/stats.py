"""Campaign stats computed in SQL: four grouped queries for any number of campaigns."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import BigInteger, case, cast, distinct, func, select
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

STAT_NAMES = tuple(f.name for f in fields(CampaignStats) if f.name != "bands")


def _scope(
    query: Any, column: Any, campaign_ids: Collection[int] | None, marketer_id: int | None
) -> Any:
    if campaign_ids is not None:
        return query.where(column.in_(list(campaign_ids)))
    if marketer_id is not None:
        ids = select(Campaign.id).where(Campaign.marketer_id == marketer_id)
        return query.where(column.in_(ids))
    raise ValueError("give campaign_ids or marketer_id")


# A campaign's stats but the bands, in `CampaignStats`' field order.
_Numbers = tuple[int, int, int, int, float, float, float, int, int, int]


@dataclass(frozen=True, slots=True)
class _Counts:
    """What the grouped queries read, by campaign (bands by target)."""

    target_of: dict[int, int]
    bands_of: dict[int, list[BandCount]]
    offers: dict[int, dict[str, tuple[int, int]]]
    ads: dict[int, Any]
    ledger: dict[int, int]
    population_of: dict[int, int] = field(default_factory=dict)  # by target, filled on use

    def numbers(self, campaign_id: int, target_id: int) -> _Numbers:
        """One campaign's stats but the bands, in `CampaignStats`' field order."""
        by_state = self.offers.get(campaign_id, {})
        pending_count, pending_cost = by_state.get(OfferState.PENDING, (0, 0))
        current_count, current_cost = by_state.get(OfferState.CURRENT, (0, 0))
        completed_count, _ = by_state.get(OfferState.COMPLETED, (0, 0))
        reach, views, jumps, spent = self.ads.get(campaign_id, (0, 0, 0, 0))
        population = self.population_of.get(target_id)
        if population is None:
            population = sum(band.population for band in self.bands_of.get(target_id, ()))
            self.population_of[target_id] = population
        return (
            population,
            pending_count,
            current_count,
            completed_count,
            cents_to_amount(pending_cost + current_cost),
            cents_to_amount(int(spent or 0)),
            cents_to_amount(self.ledger.get(campaign_id, 0)),
            int(reach or 0),
            int(views or 0),
            int(jumps or 0),
        )


async def _counts(
    session: AsyncSession,
    campaign_ids: Collection[int] | None,
    marketer_id: int | None,
    target_of: dict[int, int] | None = None,
) -> _Counts | None:
    if target_of is None:
        campaigns_q = select(Campaign.id, Campaign.target_id)
        if campaign_ids is None:
            campaigns_q = campaigns_q.where(Campaign.marketer_id == marketer_id)
        else:
            campaigns_q = campaigns_q.where(Campaign.id.in_(list(campaign_ids)))
        target_of = {row.id: row.target_id for row in await session.execute(campaigns_q)}
    if not target_of:
        return None

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
        # As a whole number: PostgreSQL sums bigints as numeric, which arrive as Decimals.
        select(
            LedgerEntry.campaign_id, cast(func.sum(LedgerEntry.amount_cents), BigInteger)
        ).group_by(LedgerEntry.campaign_id),
        LedgerEntry.campaign_id,
        campaign_ids,
        marketer_id,
    )
    ledger = {
        campaign_id: int(total or 0) for campaign_id, total in await session.execute(ledger_q)
    }
    return _Counts(target_of, bands_of, offers, ads, ledger)


async def campaign_stats(
    session: AsyncSession,
    *,
    campaign_ids: Collection[int] | None = None,
    marketer_id: int | None = None,
) -> dict[int, CampaignStats]:
    """Stats of the given campaigns (or of all of one marketer's), keyed by campaign id."""
    counts = await _counts(session, campaign_ids, marketer_id)
    if counts is None:
        return {}
    return {
        campaign_id: CampaignStats(
            *counts.numbers(campaign_id, target_id),
            bands=tuple(counts.bands_of.get(target_id, ())),
        )
        for campaign_id, target_id in counts.target_of.items()
    }


async def campaign_stats_wire(
    session: AsyncSession, marketer_id: int, target_of: dict[int, int]
) -> dict[int, dict[str, Any]]:
    """`campaign_stats(marketer_id=...)`, each as its `to_wire()`, for lists of thousands.

    `target_of` is the target of each of the marketer's campaigns, already read by the caller.
    No `CampaignStats` per campaign, and the campaigns of one target share its bands' list.
    """
    counts = await _counts(session, None, marketer_id, target_of)
    if counts is None:
        return {}
    bands_wire = {
        target_id: [
            {"band_id": b.band_id, "level": b.level, "name": b.name, "population": b.population}
            for b in bands
        ]
        for target_id, bands in counts.bands_of.items()
    }
    no_bands: list[dict[str, Any]] = []
    offers, ads, ledger = counts.offers, counts.ads, counts.ledger
    # A campaign with no offer and no ad event (most of a long list) has its target's stats
    # with only its own balance: a copy of the target's `quiet` stats, cheaper than building.
    quiet: dict[int, dict[str, Any]] = {}
    result: dict[int, dict[str, Any]] = {}
    for campaign_id, target_id in counts.target_of.items():
        if campaign_id in offers or campaign_id in ads:
            numbers = counts.numbers(campaign_id, target_id)
            wire: dict[str, Any] = dict(zip(STAT_NAMES, numbers, strict=True))
            wire["bands"] = bands_wire.get(target_id, no_bands)
        else:
            template = quiet.get(target_id)
            if template is None:
                population = sum(band.population for band in counts.bands_of.get(target_id, ()))
                numbers = (population, 0, 0, 0, 0.0, 0.0, 0.0, 0, 0, 0)
                template = dict(zip(STAT_NAMES, numbers, strict=True))
                template["bands"] = bands_wire.get(target_id, no_bands)
                quiet[target_id] = template
            wire = template.copy()
            wire["balance"] = cents_to_amount(ledger.get(campaign_id, 0))
        result[campaign_id] = wire
    return result

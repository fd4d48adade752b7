"""Reading campaigns with their stats, and the launch and refresh rules of a campaign's state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core import messages
from pulse_core.names import UpdateReason
from pulse_core.stats import CampaignState, CampaignStats, PopulationStatus, campaign_state
from pulse_core.topics import marketer_topic
from pulse_data import eventlog
from pulse_data.database import Database
from pulse_data.models import Campaign, Marketer, Target, utcnow
from pulse_data.pubsub import EventPublisher, campaign_transaction
from pulse_data.stats import campaign_stats


class CampaignNotFound(LookupError):
    """No such campaign for this marketer (another marketer's campaign is not found either)."""


class CampaignStateConflict(Exception):
    """The action does not fit the campaign's state; the message says why."""


@dataclass(frozen=True, slots=True)
class CampaignView:
    campaign: Campaign
    target: Target
    state: CampaignState
    stats: CampaignStats
    as_of_seq: int  # the marketer topic's seq this view reflects: events up to it are in it


class LaunchOutcome(Enum):
    POPULATE_TARGET = "populate_target"
    TARGET_POPULATING = "target_populating"
    TARGET_POPULATED = "target_populated"


@dataclass(frozen=True, slots=True)
class Launched:
    campaign_id: int
    target_id: int
    outcome: LaunchOutcome

    @property
    def message(self) -> str:
        if self.outcome is LaunchOutcome.TARGET_POPULATED:
            return messages.LAUNCHED_BUILDING
        return messages.LAUNCHED_POPULATING


async def list_campaigns(
    session: AsyncSession, marketer_id: int, campaign_id: int | None = None
) -> list[CampaignView]:
    """The marketer's campaigns (or one of them) with their stats, ordered by id.

    Call it in a read session (one snapshot): `as_of_seq` then tells which of the marketer
    topic's events the views already reflect.
    """
    as_of_seq = await eventlog.head(session, marketer_topic(marketer_id))
    query = select(Campaign).where(Campaign.marketer_id == marketer_id).order_by(Campaign.id)
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    campaigns: Sequence[Campaign] = (await session.scalars(query)).all()
    if not campaigns:
        return []
    if campaign_id is not None:
        stats = await campaign_stats(session, campaign_ids=[campaign_id])
    else:
        stats = await campaign_stats(session, marketer_id=marketer_id)
    return [
        CampaignView(
            campaign=campaign,
            target=campaign.target,
            state=campaign_state(campaign.launched_at, campaign.deactivated_at, campaign.paused_at),
            stats=stats.get(campaign.id, CampaignStats()),
            as_of_seq=as_of_seq,
        )
        for campaign in campaigns
    ]


async def get_campaign(session: AsyncSession, marketer_id: int, campaign_id: int) -> CampaignView:
    views = await list_campaigns(session, marketer_id, campaign_id)
    if not views:
        raise CampaignNotFound(campaign_id)
    return views[0]


async def marketer_name(session: AsyncSession, marketer_id: int) -> str:
    return (await session.scalar(select(Marketer.name).where(Marketer.id == marketer_id))) or ""


async def campaign_marketer(session: AsyncSession, campaign_id: int) -> int | None:
    """The id of the marketer that owns a campaign, or None when there is no such campaign."""
    return await session.scalar(select(Campaign.marketer_id).where(Campaign.id == campaign_id))


async def _owned_campaign(session: AsyncSession, marketer_id: int, campaign_id: int) -> Campaign:
    """The marketer's campaign, unless it is missing (or another's) or archived."""
    campaign = await session.scalar(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.marketer_id == marketer_id)
    )
    if campaign is None:
        raise CampaignNotFound(campaign_id)
    if campaign.deactivated_at is not None:
        raise CampaignStateConflict(messages.ARCHIVED)
    return campaign


async def launch_campaign(
    db: Database, publisher: EventPublisher | None, marketer_id: int, campaign_id: int
) -> Launched:
    """Mark the campaign launched and its target populating; the caller enqueues the jobs."""
    async with campaign_transaction(db, publisher) as events:
        session = events.session
        campaign = await _owned_campaign(session, marketer_id, campaign_id)
        launched = await session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                Campaign.launched_at.is_(None),
                Campaign.deactivated_at.is_(None),
            )
            .values(launched_at=utcnow())
        )
        if getattr(launched, "rowcount", 0) != 1:
            raise CampaignStateConflict(messages.ALREADY_LAUNCHED)
        marked = await session.execute(
            update(Target)
            .where(
                Target.id == campaign.target_id,
                Target.population_status == PopulationStatus.NOT_POPULATED.value,
            )
            .values(population_status=PopulationStatus.POPULATING.value)
        )
        if getattr(marked, "rowcount", 0) == 1:
            outcome = LaunchOutcome.POPULATE_TARGET
        else:
            status = await session.scalar(
                select(Target.population_status).where(Target.id == campaign.target_id)
            )
            outcome = (
                LaunchOutcome.TARGET_POPULATED
                if status == PopulationStatus.POPULATED.value
                else LaunchOutcome.TARGET_POPULATING
            )
        events.broadcast_campaign_updated(campaign_id, reason=UpdateReason.LAUNCHED)
        return Launched(campaign_id, campaign.target_id, outcome)


async def check_refreshable(session: AsyncSession, marketer_id: int, campaign_id: int) -> Campaign:
    """The campaign, if offers may be refreshed for it now."""
    campaign = await _owned_campaign(session, marketer_id, campaign_id)
    if campaign_state(campaign.launched_at, None) is CampaignState.NOT_LAUNCHED:
        raise CampaignStateConflict(messages.MUST_LAUNCH_FIRST)
    return campaign

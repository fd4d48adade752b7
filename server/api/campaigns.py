"""Campaigns of the caller's marketer with their stats, and the Launch and Refresh actions."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Path, status

from pulse_core import messages
from pulse_core.names import JOB_CREATE_OFFERS, JOB_POPULATE_TARGET
from pulse_core.stats import PopulationStatus
from pulse_data.campaigns import (
    CampaignNotFound,
    CampaignStateConflict,
    CampaignView,
    check_refreshable,
    get_campaign,
    launch_campaign,
    list_campaigns,
)
from server.deps import CurrentUser, SessionDep, StateDep
from server.schemas import (
    ActionAccepted,
    CampaignOut,
    ErrorOut,
    StatsOut,
    TargetOut,
)

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])

CampaignId = Path(ge=1, le=2**53, description="campaign id")
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 404: {"model": ErrorOut}}
ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {"model": ErrorOut},
    503: {"model": ErrorOut},
}


def campaign_out(view: CampaignView) -> CampaignOut:
    campaign, target, stats = view.campaign, view.target, view.stats
    return CampaignOut(
        id=campaign.id,
        marketer_id=campaign.marketer_id,
        title=campaign.title,
        description=campaign.description,
        state=view.state,
        target=TargetOut(
            id=target.id,
            title=target.title,
            population_status=PopulationStatus(target.population_status),
            last_populated_at=target.last_populated_at,
        ),
        stats=StatsOut.model_validate(stats, from_attributes=True),
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        launched_at=campaign.launched_at,
        deactivated_at=campaign.deactivated_at,
        as_of_seq=view.as_of_seq,
    )


def _not_found(campaign_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"campaign {campaign_id} not found")


@router.get("", responses={401: {"model": ErrorOut}})
async def campaigns(user: CurrentUser, session: SessionDep) -> list[CampaignOut]:
    return [campaign_out(view) for view in await list_campaigns(session, user.marketer_id)]


@router.get("/{campaign_id}", responses=ERRORS)
async def campaign(
    user: CurrentUser, session: SessionDep, campaign_id: int = CampaignId
) -> CampaignOut:
    try:
        return campaign_out(await get_campaign(session, user.marketer_id, campaign_id))
    except CampaignNotFound:
        raise _not_found(campaign_id) from None


async def _require_job_queue(state: StateDep) -> None:
    try:
        await state.jobs.ping()
    except Exception:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the job queue (Redis) is not answering; nothing was changed, try again shortly",
        ) from None


@router.post("/{campaign_id}/launch", status_code=202, responses=ACTION_ERRORS)
async def launch(
    user: CurrentUser, state: StateDep, campaign_id: int = CampaignId
) -> ActionAccepted:
    await _require_job_queue(state)
    try:
        launched = await launch_campaign(state.db, state.publisher, user.marketer_id, campaign_id)
    except CampaignNotFound:
        raise _not_found(campaign_id) from None
    except CampaignStateConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if launched.outcome.value == "populate_target":
        await state.jobs.enqueue_job(JOB_POPULATE_TARGET, launched.target_id)
    await state.jobs.enqueue_job(JOB_CREATE_OFFERS, campaign_id)
    log.info(
        "campaign %d launched by user %d (%s)", campaign_id, user.user_id, launched.outcome.value
    )
    return ActionAccepted(message=launched.message)


@router.post("/{campaign_id}/refresh-offers", status_code=202, responses=ACTION_ERRORS)
async def refresh_offers(
    user: CurrentUser, state: StateDep, session: SessionDep, campaign_id: int = CampaignId
) -> ActionAccepted:
    try:
        campaign = await check_refreshable(session, user.marketer_id, campaign_id)
    except CampaignNotFound:
        raise _not_found(campaign_id) from None
    except CampaignStateConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    await _require_job_queue(state)
    request_id = uuid.uuid4().hex
    await state.jobs.enqueue_job(JOB_CREATE_OFFERS, campaign_id, request_id=request_id)
    return ActionAccepted(message=messages.refreshing_offers(campaign.title), request_id=request_id)

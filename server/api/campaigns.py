"""Campaigns of the caller's marketer: reading them, and every action a marketer takes on one."""

from __future__ import annotations

import asyncio
import gzip
import logging
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from pydantic_core import to_json

from pulse_core import messages
from pulse_core.names import JOB_CREATE_OFFERS, AuditAction
from pulse_core.stats import CampaignState, CampaignStats, PopulationStatus, campaign_state
from pulse_data.campaigns import (
    BidInput,
    CampaignChanges,
    CampaignDraft,
    CampaignListing,
    CampaignNotFound,
    CampaignStateConflict,
    CampaignView,
    LaunchOutcome,
    campaign_listing,
    change_state,
    create_campaign,
    deposit,
    edit_campaign,
    get_campaign,
    launch_campaign,
    request_refresh,
)
from pulse_data.population import enqueue_population
from pulse_data.targets import InvalidField, TargetNotFound
from server.deps import Caller, CampaignManager, CurrentUser, Depositor, SessionDep, StateDep
from server.schemas import (
    ActionAccepted,
    BidIn,
    BidOut,
    CampaignIn,
    CampaignOut,
    CampaignPatch,
    DepositIn,
    DepositOut,
    ErrorOut,
    StatsOut,
    TargetOut,
    invalid_field,
)
from server.state import ServerState

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])

CampaignId = Path(ge=1, le=2**53, description="campaign id")
ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 404: {"model": ErrorOut}}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"model": ErrorOut},
    409: {"model": ErrorOut},
}
ACTION_ERRORS: dict[int | str, dict[str, Any]] = {**WRITE_ERRORS, 503: {"model": ErrorOut}}
# A list of campaigns at least this long goes gzipped to a client that accepts it: 10,000
# campaigns are 8.3 MB of JSON, 0.26 MB at level 1 (~30 ms); level 6 is 3x slower for 25% less.
GZIP_MIN_BYTES = 32 * 1024
GZIP_LEVEL = 1


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
        paused_at=campaign.paused_at,
        bids=None
        if view.bids is None
        else [BidOut.model_validate(bid, from_attributes=True) for bid in view.bids],
        as_of_seq=view.as_of_seq,
    )


_STATE_TEXT = {state: state.value for state in CampaignState}  # faster than `.value`


def listing_json(listing: CampaignListing) -> bytes:
    """The JSON of `list[CampaignOut]` for a listing, built without a model per campaign.

    Keys in `CampaignOut`'s order; pydantic-core writes the values as it does for the models.
    """
    as_of_seq = listing.as_of_seq
    stats_of = listing.stats
    no_stats = CampaignStats().to_wire()
    targets: dict[int, dict[str, Any]] = {}  # one per target, shared by its campaigns
    items = []
    for (
        campaign_id,
        marketer_id,
        title,
        description,
        starts_at,
        ends_at,
        launched_at,
        deactivated_at,
        paused_at,
        target_id,
        target_title,
        population_status,
        last_populated_at,
    ) in listing.rows:  # the order of LISTING_COLUMNS
        items.append(
            {
                "id": campaign_id,
                "marketer_id": marketer_id,
                "title": title,
                "description": description,
                "state": _STATE_TEXT[campaign_state(launched_at, deactivated_at, paused_at)],
                "target": targets.get(target_id)
                or targets.setdefault(
                    target_id,
                    {
                        "id": target_id,
                        "title": target_title,
                        "population_status": population_status,
                        "last_populated_at": last_populated_at,
                    },
                ),
                "stats": stats_of.get(campaign_id, no_stats),
                "starts_at": starts_at,
                "ends_at": ends_at,
                "launched_at": launched_at,
                "deactivated_at": deactivated_at,
                "paused_at": paused_at,
                "bids": None,
                "as_of_seq": as_of_seq,
            }
        )
    return to_json(items)


def _not_found(campaign_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"campaign {campaign_id} not found")


def _bids(bids: list[BidIn]) -> tuple[BidInput, ...]:
    return tuple(
        BidInput(bid.band_id, bid.offer_amount_cents, bid.marketer_cost_cents) for bid in bids
    )


async def _fresh(state: ServerState, marketer_id: int, campaign_id: int) -> CampaignOut:
    async with state.db.reader() as session:
        return campaign_out(await get_campaign(session, marketer_id, campaign_id))


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an `Accept-Encoding` value accepts gzip (`gzip;q=0` refuses it)."""
    for item in accept_encoding.lower().split(","):
        name, _, params = item.partition(";")
        if name.strip() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip()
            try:
                return not quality or float(quality) > 0
            except ValueError:
                return False
    return False


async def json_answer(request: Request, body: bytes) -> Response:
    """A JSON answer, gzipped when it is large and the client accepts gzip."""
    headers = {"Vary": "Accept-Encoding"}
    if len(body) >= GZIP_MIN_BYTES and accepts_gzip(request.headers.get("accept-encoding", "")):
        # zlib lets go of the GIL: the event loop keeps serving WebSockets meanwhile.
        body = await asyncio.to_thread(gzip.compress, body, GZIP_LEVEL, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type="application/json", headers=headers)


@router.get("", response_model=list[CampaignOut], responses={401: {"model": ErrorOut}})
async def campaigns(user: CurrentUser, session: SessionDep, request: Request) -> Response:
    listing = await campaign_listing(session, user.marketer_id)
    return await json_answer(request, listing_json(listing))


@router.get("/{campaign_id}", responses=ERRORS)
async def campaign(
    user: CurrentUser, session: SessionDep, campaign_id: int = CampaignId
) -> CampaignOut:
    try:
        return campaign_out(await get_campaign(session, user.marketer_id, campaign_id))
    except CampaignNotFound:
        raise _not_found(campaign_id) from None


@router.post("", status_code=201, responses={**WRITE_ERRORS})
async def create(body: CampaignIn, user: CampaignManager, state: StateDep) -> CampaignOut:
    draft = CampaignDraft(
        title=body.title,
        description=body.description,
        target_id=body.target_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        bids=_bids(body.bids),
    )
    try:
        campaign_id = await create_campaign(
            state.db, state.publisher, user.marketer_id, user.actor, draft
        )
    except TargetNotFound:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"target {body.target_id} not found"
        ) from None
    except InvalidField as exc:
        raise invalid_field(exc.field, exc.message) from None
    return await _fresh(state, user.marketer_id, campaign_id)


@router.patch("/{campaign_id}", responses=WRITE_ERRORS)
async def edit(
    body: CampaignPatch, user: CampaignManager, state: StateDep, campaign_id: int = CampaignId
) -> CampaignOut:
    changes = CampaignChanges(
        title=body.title,
        description=body.description,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        bids=None if body.bids is None else _bids(body.bids),
    )
    try:
        await edit_campaign(
            state.db, state.publisher, user.marketer_id, user.actor, campaign_id, changes
        )
    except CampaignNotFound:
        raise _not_found(campaign_id) from None
    except CampaignStateConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except InvalidField as exc:
        raise invalid_field(exc.field, exc.message) from None
    return await _fresh(state, user.marketer_id, campaign_id)


async def _change_state(
    state: ServerState, user: Caller, campaign_id: int, action: AuditAction
) -> CampaignOut:
    try:
        await change_state(
            state.db, state.publisher, user.marketer_id, user.actor, campaign_id, action
        )
    except CampaignNotFound:
        raise _not_found(campaign_id) from None
    except CampaignStateConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return await _fresh(state, user.marketer_id, campaign_id)


@router.post("/{campaign_id}/pause", responses=WRITE_ERRORS)
async def pause(
    user: CampaignManager, state: StateDep, campaign_id: int = CampaignId
) -> CampaignOut:
    return await _change_state(state, user, campaign_id, AuditAction.PAUSED)


@router.post("/{campaign_id}/resume", responses=WRITE_ERRORS)
async def resume(
    user: CampaignManager, state: StateDep, campaign_id: int = CampaignId
) -> CampaignOut:
    return await _change_state(state, user, campaign_id, AuditAction.RESUMED)


@router.post("/{campaign_id}/archive", responses=WRITE_ERRORS)
async def archive(
    user: CampaignManager, state: StateDep, campaign_id: int = CampaignId
) -> CampaignOut:
    return await _change_state(state, user, campaign_id, AuditAction.ARCHIVED)


@router.post("/{campaign_id}/deposits", status_code=201, responses=WRITE_ERRORS)
async def make_deposit(
    body: DepositIn, user: Depositor, state: StateDep, campaign_id: int = CampaignId
) -> DepositOut:
    try:
        made = await deposit(
            state.db,
            state.publisher,
            user.marketer_id,
            user.actor,
            campaign_id,
            body.amount_cents,
            body.note,
        )
    except CampaignNotFound:
        raise _not_found(campaign_id) from None
    except CampaignStateConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except InvalidField as exc:
        raise invalid_field(exc.field, exc.message) from None
    return DepositOut(
        id=made.id,
        campaign_id=made.campaign_id,
        amount_cents=made.amount_cents,
        note=made.note,
        created_at=made.created_at,
        balance_cents=made.balance_cents,
    )


async def _require_job_queue(state: StateDep) -> None:
    try:
        await state.jobs.ping()
    except Exception:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the job queue (Redis) is not answering; nothing was changed, try again shortly",
        ) from None


def _actor_of(user: Caller) -> dict[str, Any]:
    """The job's `actor` argument: who asked, for the events the job publishes."""
    return {"actor": user.actor.event_fields()["actor"]}


@router.post("/{campaign_id}/launch", status_code=202, responses=ACTION_ERRORS)
async def launch(
    user: CampaignManager, state: StateDep, campaign_id: int = CampaignId
) -> ActionAccepted:
    await _require_job_queue(state)
    try:
        launched = await launch_campaign(
            state.db, state.publisher, user.marketer_id, campaign_id, actor=user.actor
        )
    except CampaignNotFound:
        raise _not_found(campaign_id) from None
    except CampaignStateConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if launched.outcome is LaunchOutcome.POPULATE_TARGET:
        await enqueue_population(state.db, state.jobs, launched.target_id)
    # The offers the launch makes are the person's doing too: their events name them.
    await state.jobs.enqueue_job(JOB_CREATE_OFFERS, campaign_id, **_actor_of(user))
    log.info(
        "campaign %d launched by user %d (%s)", campaign_id, user.user_id, launched.outcome.value
    )
    return ActionAccepted(message=launched.message)


@router.post("/{campaign_id}/refresh-offers", status_code=202, responses=ACTION_ERRORS)
async def refresh_offers(
    user: CampaignManager, state: StateDep, campaign_id: int = CampaignId
) -> ActionAccepted:
    await _require_job_queue(state)
    request_id = uuid.uuid4().hex
    try:
        campaign = await request_refresh(
            state.db, user.marketer_id, user.actor, campaign_id, request_id
        )
    except CampaignNotFound:
        raise _not_found(campaign_id) from None
    except CampaignStateConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    await state.jobs.enqueue_job(
        JOB_CREATE_OFFERS, campaign_id, request_id=request_id, **_actor_of(user)
    )
    return ActionAccepted(message=messages.refreshing_offers(campaign.title), request_id=request_id)

"""The ingestion API of an ad server: the current offers to show, and what members did with them.

Both routes take an ingestion key (`pulse apikey create`), never a user's login token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from pulse_data import apikeys
from pulse_data.apikeys import KeyHolder
from pulse_data.ingest import MAX_EVENTS, MAX_ID_LENGTH, MAX_OFFER_ID, IngestRejected, ingest
from pulse_data.ingest import live_offers as read_live_offers
from server.deps import SessionDep, StateDep, unauthorized
from server.schemas import ErrorOut

router = APIRouter(prefix="/api/ingest", tags=["ingest"])
MAX_OFFERS_PAGE = 1000

_key_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="IngestionKey",
    description="an ingestion key made with `pulse apikey create`",
)
KeyCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_key_bearer)]


async def key_holder(state: StateDep, credentials: KeyCredentials) -> KeyHolder:
    """The key's holder; 401 for a missing, unknown or revoked key, or a login token."""
    if credentials is None:
        raise unauthorized(
            "no ingestion key: send 'Authorization: Bearer <key>' with a key made by "
            "`pulse apikey create`"
        )
    presented = credentials.credentials
    if not presented.startswith(apikeys.KEY_PREFIX):
        raise unauthorized(
            f"not an ingestion key: these routes take a key starting with "
            f"'{apikeys.KEY_PREFIX}' (`pulse apikey create`), not a login token"
        )
    holder = await apikeys.authenticate(state.db, presented)
    if holder is None:
        raise unauthorized("unknown or revoked ingestion key")
    return holder


IngestKey = Annotated[KeyHolder, Depends(key_holder)]

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "offer_id", "kind", "at"],
    "properties": {
        "id": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_LENGTH,
            "description": "the sender's own unique id of this event",
        },
        "offer_id": {"type": "integer", "minimum": 1, "maximum": MAX_OFFER_ID},
        "kind": {"type": "string", "enum": ["banner_view", "text_jump", "completion"]},
        "at": {"type": "string", "format": "date-time", "description": "with a time zone"},
    },
}


class AdEventsIn(BaseModel):
    # Items are checked one by one in pulse_data.ingest, so that a bad one is named by index.
    events: list[Any] = Field(
        description=f"1 to {MAX_EVENTS:,} ad events",
        json_schema_extra={"items": _EVENT_SCHEMA, "minItems": 1, "maxItems": MAX_EVENTS},
    )


class IngestOut(BaseModel):
    accepted: int = Field(description="events stored by this request")
    duplicates: int = Field(description="events whose id was seen before: nothing changed")


class BadEvent(BaseModel):
    index: int
    reason: str


class RejectedOut(BaseModel):
    detail: list[BadEvent] | str


class OfferOut(BaseModel):
    id: int
    campaign_id: int
    member_handle: str
    band_id: int
    offer_amount_cents: int


@router.post(
    "/ad-events",
    responses={401: {"model": ErrorOut}, 422: {"model": RejectedOut}, 503: {"model": ErrorOut}},
)
async def ad_events(body: AdEventsIn, holder: IngestKey, state: StateDep) -> IngestOut:
    """Store ad events, all or nothing; an event `id` seen before is a duplicate."""
    if not 1 <= len(body.events) <= MAX_EVENTS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"events: send 1 to {MAX_EVENTS:,} events per request, not {len(body.events):,}",
        )
    try:
        result = await ingest(
            state.db, state.publisher, holder.marketer_id, holder.actor, body.events
        )
    except IngestRejected as rejected:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [problem.to_wire() for problem in rejected.problems],
        ) from None
    return IngestOut(accepted=result.accepted, duplicates=result.duplicates)


@router.get("/offers", responses={401: {"model": ErrorOut}})
async def offers(
    holder: IngestKey,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=MAX_OFFER_ID, description="the last offer id read")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_OFFERS_PAGE)] = 100,
) -> list[OfferOut]:
    """The current offers of the key's marketer, in id order after `after`."""
    rows = await read_live_offers(session, holder.marketer_id, after=after, limit=limit)
    return [
        OfferOut(
            id=row.id,
            campaign_id=row.campaign_id,
            member_handle=row.member_handle,
            band_id=row.band_id,
            offer_amount_cents=row.offer_amount_cents,
        )
        for row in rows
    ]

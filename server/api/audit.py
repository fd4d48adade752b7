"""The marketer's audit trail: who did what and when, oldest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from pulse_data import audit
from server.deps import CurrentUser, SessionDep
from server.schemas import AuditEntryOut, ErrorOut

router = APIRouter(prefix="/api", tags=["audit"])


@router.get("/audit", responses={401: {"model": ErrorOut}})
async def entries(
    user: CurrentUser,
    session: SessionDep,
    campaign_id: Annotated[
        int | None, Query(ge=1, le=2**53, description="only this campaign's entries")
    ] = None,
    after: Annotated[int, Query(ge=0, le=2**62, description="entries with a greater id")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntryOut]:
    """Another marketer's campaign, like an unknown one, has no entries: an empty list."""
    views = await audit.entries(
        session, user.marketer_id, campaign_id=campaign_id, after=after, limit=limit
    )
    return [AuditEntryOut.model_validate(view.to_wire()) for view in views]

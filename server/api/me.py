"""Who the caller is: their user and marketer."""

from __future__ import annotations

from fastapi import APIRouter

from pulse_data.campaigns import marketer_name
from server.deps import CurrentUser, SessionDep
from server.schemas import UserOut

router = APIRouter(prefix="/api", tags=["auth"])


@router.get("/me")
async def me(user: CurrentUser, session: SessionDep) -> UserOut:
    return UserOut(
        id=user.user_id,
        email=user.email,
        name=user.name,
        role=user.role,
        marketer_id=user.marketer_id,
        marketer_name=await marketer_name(session, user.marketer_id),
    )

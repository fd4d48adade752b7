"""Who the caller is (their user and marketer), and changing their own password."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from pulse_data import users
from pulse_data.campaigns import marketer_name
from pulse_data.users import MAX_PASSWORD_LENGTH, AccountError, UserChange
from server.api.users import refuse
from server.deps import CurrentUser, SessionDep, StateDep
from server.schemas import ErrorOut, UserOut

router = APIRouter(prefix="/api", tags=["auth"])


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=MAX_PASSWORD_LENGTH)
    new_password: str = Field(max_length=MAX_PASSWORD_LENGTH)


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


@router.post(
    "/me/password",
    status_code=204,
    responses={code: {"model": ErrorOut} for code in (400, 401, 422)},
)
async def change_password(body: PasswordChange, caller: CurrentUser, state: StateDep) -> Response:
    """Set a new password; the caller's other sessions end (this one goes on)."""
    try:
        async with state.db.reader() as session:
            await users.check_current_password(session, caller.user_id, body.current_password)
        password = await users.new_password(body.new_password, field="new_password")
        async with state.db.writer() as session:
            await users.change_user(
                session,
                caller.user_id,
                UserChange(password=password),
                actor=caller.actor,
                keep_session=caller.session_id,
            )
            await session.commit()
    except AccountError as exc:
        refuse(exc)
    return Response(status_code=204)

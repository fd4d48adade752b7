"""Who the caller is (their user and marketer), their own password and email notifications."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from pulse_core.names import AuditAction
from pulse_data import audit, notifications, users
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


class Notifications(BaseModel):
    """What the caller is told about by email (docs/notifications.md)."""

    model_config = ConfigDict(extra="forbid")

    email: StrictBool


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


@router.get("/me/notifications")
async def my_notifications(caller: CurrentUser, session: SessionDep) -> Notifications:
    return Notifications(email=await notifications.email_enabled(session, caller.user_id))


@router.put("/me/notifications", responses={code: {"model": ErrorOut} for code in (401, 422)})
async def set_my_notifications(
    body: Notifications, caller: CurrentUser, state: StateDep
) -> Notifications:
    """Turn the caller's emails on or off: any role may, for themselves."""
    async with state.db.writer() as session:
        if await notifications.email_enabled(session, caller.user_id) != body.email:
            await notifications.set_email(session, caller.user_id, body.email)
            await audit.record(
                session,
                marketer_id=caller.marketer_id,
                actor=caller.actor,
                action=AuditAction.NOTIFICATIONS_CHANGED,
                detail={"email": body.email},
            )
            await session.commit()
    return body

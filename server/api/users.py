"""The marketer's users, managed by its admins: list, create, change role, disable, password."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, NoReturn

from fastapi import APIRouter, HTTPException, status
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from pulse_core.roles import Role
from pulse_data import users
from pulse_data.users import (
    MAX_EMAIL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    AccountError,
    UserChange,
    UserView,
)
from server.deps import SessionDep, StateDep, UserAdmin
from server.schemas import ErrorOut
from server.security import MAX_ID

router = APIRouter(prefix="/api", tags=["users"])

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 422)
}


class AccountOut(BaseModel):
    id: int
    email: str
    name: str
    marketer_id: int
    role: Role
    disabled: bool
    created_at: datetime


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=MAX_EMAIL_LENGTH)
    name: str = Field(default="", max_length=MAX_NAME_LENGTH)
    role: Role
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(default=None, max_length=MAX_PASSWORD_LENGTH)
    name: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)


def _out(user: UserView) -> AccountOut:
    return AccountOut(
        id=user.id,
        email=user.email,
        name=user.name,
        marketer_id=user.marketer_id,
        role=user.role,
        disabled=user.disabled,
        created_at=user.created_at,
    )


def refuse(exc: AccountError) -> NoReturn:
    """The HTTP answer to an account change that cannot be made."""
    codes = {
        users.InvalidAccountField: status.HTTP_422_UNPROCESSABLE_CONTENT,
        users.UserNotFound: status.HTTP_404_NOT_FOUND,
        users.MarketerNotFound: status.HTTP_404_NOT_FOUND,
        users.EmailTaken: status.HTTP_409_CONFLICT,
        users.LastAdmin: status.HTTP_409_CONFLICT,
        users.WrongPassword: status.HTTP_400_BAD_REQUEST,
    }
    raise HTTPException(codes.get(type(exc), status.HTTP_409_CONFLICT), str(exc)) from None


@router.get("/users", responses=ERRORS)
async def list_users(caller: UserAdmin, session: SessionDep) -> list[AccountOut]:
    return [_out(user) for user in await users.list_users(session, caller.marketer_id)]


@router.post("/users", status_code=201, responses=ERRORS)
async def create_user(body: NewUser, caller: UserAdmin, state: StateDep) -> AccountOut:
    try:
        password = await users.new_password(body.password)
        async with state.db.writer() as session:
            user = await users.create_user(
                session,
                marketer_id=caller.marketer_id,
                email=body.email,
                name=body.name,
                role=body.role,
                password=password,
                actor=caller.actor,
            )
            await session.commit()
    except AccountError as exc:
        refuse(exc)
    return _out(user)


@router.patch("/users/{user_id}", responses=ERRORS)
async def change_user(
    user_id: Annotated[int, PathParam(ge=1, le=MAX_ID)],
    body: UserPatch,
    caller: UserAdmin,
    state: StateDep,
) -> AccountOut:
    """Change a user of the caller's marketer; a new password or disabling ends their sessions
    (the caller's own session stays when they change their own password)."""
    try:
        password = None if body.password is None else await users.new_password(body.password)
        change = UserChange(
            role=body.role, disabled=body.disabled, password=password, name=body.name
        )
        async with state.db.writer() as session:
            user = await users.change_user(
                session,
                user_id,
                change,
                actor=caller.actor,
                marketer_id=caller.marketer_id,
                keep_session=caller.session_id,
            )
            await session.commit()
    except AccountError as exc:
        refuse(exc)
    return _out(user)

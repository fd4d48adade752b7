"""FastAPI dependencies as `Annotated` aliases, so routes read like their signature."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import ActorKind
from pulse_core.roles import Permission, Role, allows, denial
from pulse_data.accounts import SessionEnded, session_user
from pulse_data.audit import Actor
from server.security import InvalidToken, read_token
from server.state import ServerState

_bearer = HTTPBearer(auto_error=False)


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.pulse
    return state


StateDep = Annotated[ServerState, Depends(get_state)]


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.db.reader() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@dataclass(frozen=True, slots=True)
class Caller:
    """A logged-in user whose session is valid now, with their current role."""

    user_id: int
    marketer_id: int
    email: str
    name: str
    role: Role
    session_id: str

    @property
    def actor(self) -> Actor:
        return Actor(ActorKind.USER, self.user_id, self.name)

    def may(self, permission: Permission) -> bool:
        return allows(self.role, permission)


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def caller_of_token(state: ServerState, token: str) -> Caller:
    """The caller a user token stands for; raises 401 unless its session is valid now."""
    try:
        principal = read_token(state.secret_key, token)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None
    async with state.db.reader() as session:
        try:
            user = await session_user(session, principal.session_id)
        except SessionEnded as exc:
            raise unauthorized(str(exc)) from None
    if (user.user_id, user.marketer_id) != (principal.user_id, principal.marketer_id):
        raise unauthorized("invalid token: log in again")
    return Caller(
        user_id=user.user_id,
        marketer_id=user.marketer_id,
        email=user.email,
        name=user.name,
        role=user.role,
        session_id=user.session_id,
    )


async def get_caller(state: StateDep, credentials: Credentials) -> Caller:
    if credentials is None:
        raise unauthorized(
            "not logged in: send 'Authorization: Bearer <access_token>' from POST /api/auth/login"
        )
    return await caller_of_token(state, credentials.credentials)


CurrentUser = Annotated[Caller, Depends(get_caller)]


def require(permission: Permission) -> Callable[..., Coroutine[Any, Any, Caller]]:
    """A dependency: the caller, if their role allows `permission`; 403 otherwise."""

    async def check(caller: CurrentUser) -> Caller:
        if not caller.may(permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, denial(caller.role, permission))
        return caller

    return check


CampaignManager = Annotated[Caller, Depends(require(Permission.MANAGE_CAMPAIGNS))]
TargetCreator = Annotated[Caller, Depends(require(Permission.CREATE_TARGETS))]
UserAdmin = Annotated[Caller, Depends(require(Permission.MANAGE_USERS))]
Depositor = Annotated[Caller, Depends(require(Permission.DEPOSIT))]

"""Login and logout: email and password in, a signed bearer token of a new session out."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import func, select

from pulse_core.names import ActorKind, AuditAction, SessionEnd
from pulse_core.roles import Role
from pulse_data import audit
from pulse_data.accounts import end_session, start_session
from pulse_data.audit import Actor
from pulse_data.models import User
from pulse_data.passwords import verify_password
from server.deps import CurrentUser, StateDep
from server.schemas import ErrorOut, LoginRequest, LoginResponse, UserOut
from server.security import issue_token

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post(
    "/login",
    responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}},
)
async def login(body: LoginRequest, request: Request, state: StateDep) -> LoginResponse:
    email = body.email.strip().lower()
    client = request.client.host if request.client else "unknown"
    wait = await state.login_limiter.retry_after(f"{client}|{email}")
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many login attempts: try again in {int(wait) + 1} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    async with state.db.reader() as session:
        user = await session.scalar(select(User).where(func.lower(User.email) == email))
    # argon2 takes tens of milliseconds of CPU by design: off the event loop, so that one
    # login does not hold up every other request and frame of this server.
    valid = await asyncio.to_thread(
        verify_password, user.password_hash if user else None, body.password
    )
    async with state.db.writer() as session:
        if user is None or not valid or user.disabled:
            actor = Actor(ActorKind.USER, user.id if user else None, email)
            reason = "disabled" if user is not None and valid else "wrong email or password"
            await audit.record(
                session,
                marketer_id=user.marketer_id if user else None,
                actor=actor,
                action=AuditAction.LOGIN_FAILED,
                detail={"email": email, "client": client, "reason": reason},
            )
            await session.commit()
            if user is not None and valid:
                raise HTTPException(
                    status.HTTP_401_UNAUTHORIZED,
                    "your account is disabled: ask an admin of your company",
                )
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong email or password")
        auth_session = await start_session(session, user.id, state.settings.token_ttl_seconds)
        await audit.record(
            session,
            marketer_id=user.marketer_id,
            actor=Actor(ActorKind.USER, user.id, user.name or user.email),
            action=AuditAction.LOGIN,
            detail={"client": client},
        )
        await session.commit()
    token = issue_token(
        state.secret_key,
        user_id=user.id,
        marketer_id=user.marketer_id,
        email=user.email,
        session_id=auth_session.id,
        expires_at=auth_session.expires_at,
    )
    return LoginResponse(
        access_token=token,
        expires_at=auth_session.expires_at,
        user=UserOut(
            id=user.id,
            email=user.email,
            name=user.name,
            marketer_id=user.marketer_id,
            marketer_name=user.marketer.name,
            role=Role(user.role),
        ),
    )


@router.post("/logout", status_code=204, responses={401: {"model": ErrorOut}})
async def logout(caller: CurrentUser, state: StateDep) -> Response:
    """End this token's session on every server; its WebSockets are closed with 4401."""
    async with state.db.writer() as session:
        await end_session(session, caller.session_id, SessionEnd.LOGOUT)
        await audit.record(
            session, marketer_id=caller.marketer_id, actor=caller.actor, action=AuditAction.LOGOUT
        )
        await session.commit()
    return Response(status_code=204)

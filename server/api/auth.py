"""Login: email and password in, a signed, expiring bearer token out."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import func, select

from pulse_data.models import User
from pulse_data.passwords import verify_password
from server.deps import SessionDep, StateDep
from server.schemas import ErrorOut, LoginRequest, LoginResponse, UserOut
from server.security import issue_token

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post(
    "/login",
    responses={401: {"model": ErrorOut}, 429: {"model": ErrorOut}},
)
async def login(
    body: LoginRequest, request: Request, state: StateDep, session: SessionDep
) -> LoginResponse:
    email = body.email.strip().lower()
    client = request.client.host if request.client else "unknown"
    wait = state.login_limiter.retry_after(f"{client}|{email}")
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many login attempts: try again in {int(wait) + 1} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    user = await session.scalar(select(User).where(func.lower(User.email) == email))
    if not verify_password(user.password_hash if user else None, body.password) or user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong email or password")
    token, expires_at = issue_token(
        state.secret_key,
        user_id=user.id,
        marketer_id=user.marketer_id,
        email=user.email,
        ttl_seconds=state.settings.token_ttl_seconds,
    )
    return LoginResponse(
        access_token=token,
        expires_at=expires_at,
        user=UserOut(
            id=user.id,
            email=user.email,
            marketer_id=user.marketer_id,
            marketer_name=user.marketer.name,
        ),
    )

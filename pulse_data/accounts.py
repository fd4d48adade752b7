"""Login sessions: made at login, checked on every request, ended everywhere at once.

A token names its session. Ending the session here (logout, a password change, a disabled
user) ends the token on every server of the deployment, since every server checks the same
database; servers also look for sessions ended since their last look to close WebSockets.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import SessionEnd
from pulse_core.roles import Role
from pulse_data.models import AuthSession, User, utcnow
from pulse_data.sqlutil import rowcount


@dataclass(frozen=True, slots=True)
class SessionUser:
    """The user behind a session that is still valid."""

    session_id: str
    user_id: int
    marketer_id: int
    email: str
    name: str
    role: Role
    expires_at: datetime


class SessionEnded(Exception):
    """The session is over; the message says why, in words for the user."""


_END_MESSAGES = {
    SessionEnd.LOGOUT.value: "you logged out: log in again",
    SessionEnd.PASSWORD_CHANGED.value: "your password was changed: log in again",
    SessionEnd.DISABLED.value: "your account is disabled: ask an admin of your company",
}


def end_message(reason: str | None) -> str:
    return _END_MESSAGES.get(reason or "", "your session has ended: log in again")


async def start_session(session: AsyncSession, user_id: int, ttl_seconds: int) -> AuthSession:
    """A new session of the user (the caller commits)."""
    now = utcnow()
    row = AuthSession(
        id=secrets.token_urlsafe(24),
        user_id=user_id,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    session.add(row)
    await session.flush()
    return row


async def session_user(session: AsyncSession, session_id: str) -> SessionUser:
    """The user of a valid session; raises `SessionEnded` when it ended, expired or is unknown."""
    row = (
        await session.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.id == session_id)
        )
    ).first()
    if row is None:
        raise SessionEnded("invalid token: log in again")
    auth_session, user = row
    if user.disabled:
        raise SessionEnded(end_message(SessionEnd.DISABLED))
    if auth_session.ended_at is not None:
        raise SessionEnded(end_message(auth_session.end_reason))
    if auth_session.expires_at <= utcnow():
        raise SessionEnded("your session has expired: log in again")
    return SessionUser(
        session_id=auth_session.id,
        user_id=user.id,
        marketer_id=user.marketer_id,
        email=user.email,
        name=user.name or user.email,
        role=Role(user.role),
        expires_at=auth_session.expires_at,
    )


async def end_session(session: AsyncSession, session_id: str, reason: SessionEnd) -> bool:
    """End one session (the caller commits); True when it was still open."""
    result = await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason.value)
    )
    return rowcount(result) == 1


async def end_user_sessions(
    session: AsyncSession, user_id: int, reason: SessionEnd, *, keep: str | None = None
) -> int:
    """End every open session of the user but `keep` (the caller commits); returns how many."""
    statement = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.ended_at.is_(None)
    )
    if keep is not None:
        statement = statement.where(AuthSession.id != keep)
    result = await session.execute(statement.values(ended_at=utcnow(), end_reason=reason.value))
    return rowcount(result)


async def ended_since(session: AsyncSession, since: datetime) -> list[tuple[str, str | None]]:
    """(session id, reason) of the sessions ended at or after `since`."""
    rows = await session.execute(
        select(AuthSession.id, AuthSession.end_reason).where(AuthSession.ended_at >= since)
    )
    return [(session_id, reason) for session_id, reason in rows]

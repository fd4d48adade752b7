"""Marketers and their user accounts, as REST and the `pulse` command create and change them.

Each change is one transaction with its audit entry; a password change or disabling a user
ends that user's login sessions in the same transaction.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import AuditAction, SessionEnd
from pulse_core.roles import Role
from pulse_data import audit
from pulse_data.accounts import end_user_sessions
from pulse_data.audit import Actor
from pulse_data.models import Campaign, Marketer, User
from pulse_data.passwords import hash_password, verify_password

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 320
MAX_NAME_LENGTH = 200


class AccountError(Exception):
    """A change that cannot be made; the message says what to do instead."""


class InvalidAccountField(AccountError):
    """Bad input (422); `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class MarketerNotFound(AccountError):
    """No marketer with that id."""


class UserNotFound(AccountError):
    """No such user (or one of another marketer, which is not revealed)."""


class EmailTaken(AccountError):
    """Another user has that email, whatever its case (409)."""


class MarketerNameTaken(AccountError):
    """Another marketer has that name (409)."""


class LastAdmin(AccountError):
    """The change would leave a marketer without an enabled admin (409)."""


class WrongPassword(AccountError):
    """The current password given is not the user's (400)."""


@dataclass(frozen=True, slots=True)
class MarketerSummary:
    id: int
    name: str
    users: int
    campaigns: int


@dataclass(frozen=True, slots=True)
class UserView:
    id: int
    email: str
    name: str
    marketer_id: int
    marketer_name: str
    role: Role
    disabled: bool
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "marketer_id": self.marketer_id,
            "marketer_name": self.marketer_name,
            "role": self.role.value,
            "disabled": self.disabled,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class NewPassword:
    """A password that passed the rules, hashed (made before the transaction: hashing is slow)."""

    hash: str


@dataclass(frozen=True, slots=True)
class UserChange:
    """What to change of a user; None leaves it as it is."""

    role: Role | None = None
    disabled: bool | None = None
    password: NewPassword | None = None
    name: str | None = None


def normalize_email(email: str) -> str:
    """The stored form of an email (trimmed, lower case); raises `InvalidAccountField`."""
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not (at and local and domain) or any(c.isspace() for c in email):
        raise InvalidAccountField("email", "give an email address such as ann@example.com")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidAccountField("email", f"at most {MAX_EMAIL_LENGTH} characters")
    return email


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        choices = ", ".join(role.value for role in Role)
        raise InvalidAccountField(
            "role", f"{value!r} is not a role: use one of {choices}"
        ) from None


def check_name(name: str, field: str = "name") -> str:
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidAccountField(field, f"at most {MAX_NAME_LENGTH} characters")
    return name


async def new_password(password: str, field: str = "password") -> NewPassword:
    """Check the password rules and hash it (in a thread, so the event loop keeps going)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidAccountField(
            field, f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidAccountField(field, f"at most {MAX_PASSWORD_LENGTH} characters")
    return NewPassword(await asyncio.to_thread(hash_password, password))


async def create_marketer(session: AsyncSession, name: str, *, actor: Actor) -> int:
    """A new marketer (the caller commits); returns its id."""
    name = check_name(name)
    if not name:
        raise InvalidAccountField("name", "give the marketer a name")
    existing = await session.scalar(
        select(Marketer.id).where(func.lower(Marketer.name) == name.lower())
    )
    if existing is not None:
        raise MarketerNameTaken(f"a marketer named {name!r} already exists (id {existing})")
    marketer = Marketer(name=name)
    session.add(marketer)
    await session.flush()
    await audit.record(
        session,
        marketer_id=marketer.id,
        actor=actor,
        action=AuditAction.MARKETER_CREATED,
        detail={"name": name},
    )
    return marketer.id


async def list_marketers(session: AsyncSession) -> list[MarketerSummary]:
    users = select(User.marketer_id, func.count().label("n")).group_by(User.marketer_id).subquery()
    campaigns = (
        select(Campaign.marketer_id, func.count().label("n"))
        .group_by(Campaign.marketer_id)
        .subquery()
    )
    rows = await session.execute(
        select(
            Marketer.id,
            Marketer.name,
            func.coalesce(users.c.n, 0),
            func.coalesce(campaigns.c.n, 0),
        )
        .outerjoin(users, users.c.marketer_id == Marketer.id)
        .outerjoin(campaigns, campaigns.c.marketer_id == Marketer.id)
        .order_by(Marketer.id)
    )
    return [
        MarketerSummary(id, name, int(n_users), int(n_campaigns))
        for id, name, n_users, n_campaigns in rows
    ]


async def create_user(
    session: AsyncSession,
    *,
    marketer_id: int,
    email: str,
    name: str,
    role: Role,
    password: NewPassword,
    actor: Actor,
) -> UserView:
    """A new user of the marketer (the caller commits)."""
    email = normalize_email(email)
    name = check_name(name)
    marketer = await _lock_marketer(session, marketer_id)
    if await email_in_use(session, email):
        raise EmailTaken(f"email: {email} is already taken")
    user = User(
        marketer_id=marketer.id,
        email=email,
        name=name,
        password_hash=password.hash,
        role=role.value,
        disabled=False,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise EmailTaken(f"email: {email} is already taken") from None
    await audit.record(
        session,
        marketer_id=marketer.id,
        actor=actor,
        action=AuditAction.USER_CREATED,
        detail={"user_id": user.id, "email": email, "name": name, "role": role.value},
    )
    return _view(user, marketer.name)


async def change_user(
    session: AsyncSession,
    user_id: int,
    change: UserChange,
    *,
    actor: Actor,
    marketer_id: int | None = None,
    keep_session: str | None = None,
) -> UserView:
    """Change a user (the caller commits); with `marketer_id`, only a user of that marketer.

    A new password ends the user's sessions but `keep_session`; disabling ends them all.
    """
    user = await session.scalar(select(User).where(User.id == user_id))
    if user is None or (marketer_id is not None and user.marketer_id != marketer_id):
        raise UserNotFound(f"no user with id {user_id}")
    marketer = await _lock_marketer(session, user.marketer_id)
    await session.refresh(user)  # as it is now that the marketer's users are ours to change
    changes: dict[str, Any] = {}
    if change.role is not None and change.role.value != user.role:
        changes["role"] = {"from": user.role, "to": change.role.value}
    if change.disabled is not None and change.disabled != user.disabled:
        changes["disabled"] = {"from": user.disabled, "to": change.disabled}
    if change.name is not None and check_name(change.name) != user.name:
        changes["name"] = {"from": user.name, "to": check_name(change.name)}
    was_admin = user.role == Role.ADMIN.value and not user.disabled
    stays_admin = (change.role or Role(user.role)) is Role.ADMIN and not (
        user.disabled if change.disabled is None else change.disabled
    )
    if was_admin and not stays_admin and not await _other_admins(session, user):
        raise LastAdmin(
            f"{user.email} is the last admin of {marketer.name}: make another user admin first"
        )
    if "role" in changes:
        user.role = changes["role"]["to"]
    if "name" in changes:
        user.name = changes["name"]["to"]
    target = {"user_id": user.id, "email": user.email}
    if changes:
        ended = 0
        if "disabled" in changes:
            user.disabled = change.disabled is True
            if user.disabled:
                ended = await end_user_sessions(session, user.id, SessionEnd.DISABLED)
        await audit.record(
            session,
            marketer_id=user.marketer_id,
            actor=actor,
            action=AuditAction.USER_CHANGED,
            detail={**target, "changes": changes, "sessions_ended": ended},
        )
    if change.password is not None:
        user.password_hash = change.password.hash
        ended = await end_user_sessions(
            session, user.id, SessionEnd.PASSWORD_CHANGED, keep=keep_session
        )
        await audit.record(
            session,
            marketer_id=user.marketer_id,
            actor=actor,
            action=AuditAction.PASSWORD_CHANGED,
            detail={**target, "sessions_ended": ended},
        )
    await session.flush()
    return _view(user, marketer.name)


async def check_current_password(session: AsyncSession, user_id: int, password: str) -> None:
    """Raise `WrongPassword` unless `password` is the user's password now."""
    password_hash = await session.scalar(select(User.password_hash).where(User.id == user_id))
    if not await asyncio.to_thread(verify_password, password_hash, password[:MAX_PASSWORD_LENGTH]):
        raise WrongPassword("current_password: that is not your current password")


async def list_users(session: AsyncSession, marketer_id: int | None = None) -> list[UserView]:
    query = select(User, Marketer.name).join(Marketer, Marketer.id == User.marketer_id)
    if marketer_id is not None:
        query = query.where(User.marketer_id == marketer_id)
    rows = await session.execute(query.order_by(User.id))
    return [_view(user, marketer_name) for user, marketer_name in rows]


async def user_id_of_email(session: AsyncSession, email: str) -> int:
    found = await session.scalar(
        select(User.id).where(func.lower(User.email) == email.strip().lower())
    )
    if found is None:
        raise UserNotFound(f"no user with the email {email.strip()!r}")
    return found


async def email_in_use(session: AsyncSession, email: str) -> bool:
    found = await session.scalar(select(User.id).where(func.lower(User.email) == email.lower()))
    return found is not None


async def marketer_exists(session: AsyncSession, marketer_id: int) -> bool:
    return await session.scalar(select(Marketer.id).where(Marketer.id == marketer_id)) is not None


async def _lock_marketer(session: AsyncSession, marketer_id: int) -> Marketer:
    """The marketer, locked until commit (PostgreSQL), so that changes to its users take turns:
    two admins demoting each other at once cannot leave it with none. On SQLite the writer's
    transaction already holds the database's write lock."""
    marketer = await session.scalar(
        select(Marketer).where(Marketer.id == marketer_id).with_for_update()
    )
    if marketer is None:
        raise MarketerNotFound(f"no marketer with id {marketer_id}")
    return marketer


async def _other_admins(session: AsyncSession, user: User) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(User)
        .where(
            User.marketer_id == user.marketer_id,
            User.id != user.id,
            User.role == Role.ADMIN.value,
            User.disabled.is_(False),
        )
    )
    return int(count or 0)


def _view(user: User, marketer_name: str) -> UserView:
    return UserView(
        id=user.id,
        email=user.email,
        name=user.name,
        marketer_id=user.marketer_id,
        marketer_name=marketer_name,
        role=Role(user.role),
        disabled=user.disabled,
        created_at=user.created_at,
    )

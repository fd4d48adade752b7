"""Ingestion keys: made for a marketer, shown once, kept only as a SHA-256, revoked at once.

A key is checked against the database on every request, so a revoked key stops working on
every server of the deployment at the same moment.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from pulse_core.names import ActorKind, AuditAction
from pulse_data import audit
from pulse_data.audit import Actor
from pulse_data.database import Database
from pulse_data.models import ApiKey, Marketer, utcnow

KEY_PREFIX = "pk_"
PREFIX_LENGTH = 11  # "pk_" and 8 characters of the secret: enough to tell keys apart
MAX_NAME_LENGTH = 200
MAX_PRESENTED_LENGTH = 200  # a key is ~46 characters; anything far longer is not a key


class ApiKeyError(ValueError):
    """Bad input to a key operation; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as listed: never the key itself."""

    id: int
    marketer_id: int
    marketer_name: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    view: KeyView
    key: str  # the full key: shown to its creator once, then never again


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """Who presented a valid key: the key's id and name, and its marketer."""

    key_id: int
    marketer_id: int
    name: str

    @property
    def actor(self) -> Actor:
        return Actor(ActorKind.API_KEY, self.key_id, self.name)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


MAX_ID = 2**63 - 1


def _view(key: ApiKey, marketer_name: str) -> KeyView:
    return KeyView(
        key.id, key.marketer_id, marketer_name, key.name, key.prefix, key.created_at, key.revoked_at
    )


def _detail(row: KeyView) -> dict[str, object]:
    return {"key_id": row.id, "name": row.name, "prefix": row.prefix}


async def create_key(db: Database, marketer_id: int, name: str, actor: Actor) -> CreatedKey:
    """A new key of the marketer (audited `api_key_created`); the only time the key is seen."""
    name = name.strip()
    if not name:
        raise ApiKeyError("--name: give the key a name, such as the ad server that will use it")
    if len(name) > MAX_NAME_LENGTH:
        raise ApiKeyError(f"--name: at most {MAX_NAME_LENGTH} characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    async with db.writer() as session:
        marketer = None
        if 0 < marketer_id <= MAX_ID:
            marketer = await session.scalar(select(Marketer.name).where(Marketer.id == marketer_id))
        if marketer is None:
            raise ApiKeyError(
                f"--marketer: no marketer has the id {marketer_id} (see `pulse marketer list`)"
            )
        now = utcnow()
        key_id = (
            await session.execute(
                insert(ApiKey)
                .values(
                    marketer_id=marketer_id,
                    name=name,
                    key_hash=key_hash(key),
                    prefix=key[:PREFIX_LENGTH],
                    created_at=now,
                )
                .returning(ApiKey.id)
            )
        ).scalar_one()
        view = KeyView(key_id, marketer_id, marketer, name, key[:PREFIX_LENGTH], now, None)
        await audit.record(
            session,
            marketer_id=marketer_id,
            actor=actor,
            action=AuditAction.API_KEY_CREATED,
            detail=_detail(view),
        )
        await session.commit()
    return CreatedKey(view, key)


async def list_keys(db: Database, marketer_id: int | None = None) -> list[KeyView]:
    """Every key (or one marketer's), revoked ones included, by id."""
    query = (
        select(ApiKey, Marketer.name)
        .join(Marketer, Marketer.id == ApiKey.marketer_id)
        .order_by(ApiKey.id)
    )
    if marketer_id is not None:
        query = query.where(ApiKey.marketer_id == marketer_id)
    async with db.reader() as session:
        rows = (await session.execute(query)).all()
    return [_view(key, marketer) for key, marketer in rows]


async def revoke_key(db: Database, key_id: int, actor: Actor) -> tuple[KeyView, bool]:
    """Revoke a key (audited `api_key_revoked`); False when it was revoked already."""
    if not 0 < key_id <= MAX_ID:
        raise ApiKeyError(f"no key has the id {key_id} (see `pulse apikey list`)")
    async with db.writer() as session:
        row = (
            await session.execute(
                select(ApiKey, Marketer.name)
                .join(Marketer, Marketer.id == ApiKey.marketer_id)
                .where(ApiKey.id == key_id)
            )
        ).one_or_none()
        if row is None:
            raise ApiKeyError(f"no key has the id {key_id} (see `pulse apikey list`)")
        key, marketer = row
        if key.revoked_at is not None:
            return _view(key, marketer), False
        now = utcnow()
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        view = KeyView(key.id, key.marketer_id, marketer, key.name, key.prefix, key.created_at, now)
        await audit.record(
            session,
            marketer_id=key.marketer_id,
            actor=actor,
            action=AuditAction.API_KEY_REVOKED,
            detail=_detail(view),
        )
        await session.commit()
    return view, True


async def authenticate(db: Database, presented: str) -> KeyHolder | None:
    """The holder of a presented key, or None when it is unknown or revoked."""
    if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_PRESENTED_LENGTH:
        return None
    async with db.reader() as session:
        row = (
            await session.execute(
                select(ApiKey.id, ApiKey.marketer_id, ApiKey.name).where(
                    ApiKey.key_hash == key_hash(presented), ApiKey.revoked_at.is_(None)
                )
            )
        ).one_or_none()
    return None if row is None else KeyHolder(row.id, row.marketer_id, row.name)

"""The audit trail: who did what and when, from REST, ingestion and the `pulse` command.

Entries are kept apart from the event log, for as long as `PULSE_AUDIT_RETENTION_DAYS` says.
An entry is written in the transaction of the change it records, so one never exists
without the other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import ActorKind, AuditAction
from pulse_data.models import AuditEntry, utcnow
from pulse_data.sqlutil import rowcount, table


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: a user, an ingestion key, or the system (the `pulse` command, a job)."""

    kind: ActorKind
    id: int | None
    name: str

    def to_wire(self) -> dict[str, Any]:
        """The `actor` of the audit entries."""
        return {"kind": self.kind.value, "id": self.id, "name": self.name}

    def event_fields(self) -> dict[str, Any]:
        """What an event caused by this actor adds: `actor` for a person, nothing otherwise."""
        if self.kind is ActorKind.USER:
            return {"actor": {"id": self.id, "name": self.name}}
        return {}


def command_line_actor() -> Actor:
    """The `pulse` command run by whoever operates the backend."""
    return Actor(ActorKind.SYSTEM, None, "pulse command")


@dataclass(frozen=True, slots=True)
class AuditView:
    id: int
    at: datetime
    actor: Actor
    action: AuditAction | str
    campaign_id: int | None
    detail: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "actor": self.actor.to_wire(),
            "action": str(self.action),
            "campaign_id": self.campaign_id,
            "detail": self.detail,
        }


async def record(
    session: AsyncSession,
    *,
    marketer_id: int | None,
    actor: Actor,
    action: AuditAction,
    campaign_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one entry to the session's transaction (the caller commits)."""
    await session.execute(
        insert(table(AuditEntry)),
        [
            {
                "marketer_id": marketer_id,
                "at": utcnow(),
                "actor_kind": actor.kind.value,
                "actor_id": actor.id,
                "actor_name": actor.name,
                "action": action.value,
                "campaign_id": campaign_id,
                "detail": json.dumps(detail or {}, ensure_ascii=False, default=str),
            }
        ],
    )


async def entries(
    session: AsyncSession,
    marketer_id: int,
    *,
    campaign_id: int | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[AuditView]:
    """The marketer's entries with id > `after`, oldest first."""
    query = (
        select(AuditEntry)
        .where(AuditEntry.marketer_id == marketer_id, AuditEntry.id > after)
        .order_by(AuditEntry.id)
        .limit(limit)
    )
    if campaign_id is not None:
        query = query.where(AuditEntry.campaign_id == campaign_id)
    rows = (await session.scalars(query)).all()
    return [
        AuditView(
            id=row.id,
            at=row.at,
            actor=Actor(ActorKind(row.actor_kind), row.actor_id, row.actor_name),
            action=_action(row.action),
            campaign_id=row.campaign_id,
            detail=json.loads(row.detail or "{}"),
        )
        for row in rows
    ]


def _action(value: str) -> AuditAction | str:
    try:
        return AuditAction(value)
    except ValueError:
        return value


async def prune(session: AsyncSession, older_than: datetime) -> int:
    """Forget entries older than the audit retention; returns how many."""
    return rowcount(await session.execute(delete(AuditEntry).where(AuditEntry.at < older_than)))

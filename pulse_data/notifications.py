"""Email notifications: each user's choice, and the outbox rows written with the events.

`add_to_outbox` runs inside `campaign_transaction`, after the events are recorded: an event
that commits has its outbox rows, one that rolls back has none, and no code path that records
an event can forget them. The workers send the rows (pulse_data/outbox.py, workers/mail.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import EventName, UpdateReason
from pulse_core.topics import campaign_topic
from pulse_data.eventlog import PendingEvent, RecordedEvent
from pulse_data.models import (
    BalanceWatch,
    Campaign,
    LedgerEntry,
    LedgerKind,
    NotificationSetting,
    OutboxEntry,
    OutboxState,
    User,
    utcnow,
)
from pulse_data.sqlutil import table

# The balance is low below this share of the campaign's deposits.
LOW_BALANCE_PERCENT = 10
# The reasons of the `campaign_updated` events whose transaction moves a campaign's money.
_MONEY_REASONS = frozenset({UpdateReason.AD_ACTIVITY.value, UpdateReason.DEPOSIT.value})


class NotificationKind(StrEnum):
    """What an outbox row tells a user about."""

    TARGET_POPULATED = "target_populated"
    OFFERS_CREATED = "offers_created"
    ARCHIVED = "archived"
    BALANCE_LOW = "balance_low"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    NotificationKind.TARGET_POPULATED: "target populated",
    NotificationKind.OFFERS_CREATED: "offers created",
    NotificationKind.ARCHIVED: "archived",
    NotificationKind.BALANCE_LOW: "balance low",
}


# ---- each user's choice ------------------------------------------------------------------


async def email_enabled(session: AsyncSession, user_id: int) -> bool:
    """Whether the user asked for emails (nobody is emailed until they do)."""
    value = await session.scalar(
        select(NotificationSetting.email).where(NotificationSetting.user_id == user_id)
    )
    return bool(value)


async def set_email(session: AsyncSession, user_id: int, enabled: bool) -> None:
    """Turn the user's emails on or off (the caller commits)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    now = utcnow()
    statement = (
        dialect.insert(NotificationSetting)
        .values(user_id=user_id, email=enabled, updated_at=now)
        .on_conflict_do_update(
            index_elements=[NotificationSetting.user_id], set_={"email": enabled, "updated_at": now}
        )
    )
    await session.execute(statement)


# ---- outbox rows, in the events' transaction ------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Notice:
    campaign_id: int
    kind: NotificationKind
    seq: int
    summary: str


def _on_campaign_topic(
    pending: Sequence[PendingEvent], recorded: Sequence[RecordedEvent]
) -> Iterator[tuple[PendingEvent, RecordedEvent]]:
    """Each pending event with its copy on its campaign's topic (`record` keeps their order)."""
    copies = iter(recorded)
    for item in pending:
        topic = campaign_topic(item.campaign_id)
        yield item, next(copy for copy in copies if copy.topic == topic)


def _actor(item: PendingEvent) -> str:
    actor = item.extra.get("actor")
    return f" by {actor['name']}" if isinstance(actor, dict) and actor.get("name") else ""


def _notice(item: PendingEvent, copy: RecordedEvent) -> _Notice | None:
    """What the event tells a user, or None when it is not worth an email."""
    if item.event is EventName.TARGET_POPULATED:
        stats: dict[str, Any] = json.loads(copy.frame).get("stats") or {}
        members = stats.get("target_population")
        summary = "Target populated" + (f": {members:,} members" if members is not None else "")
        kind = NotificationKind.TARGET_POPULATED
    elif item.event is EventName.OFFERS_CREATED:
        summary = f"{item.count or 0:,} offers created{_actor(item)}"
        kind = NotificationKind.OFFERS_CREATED
    elif item.extra.get("reason") == UpdateReason.ARCHIVED.value:
        summary = f"Archived{_actor(item)}"
        kind = NotificationKind.ARCHIVED
    else:
        return None
    return _Notice(item.campaign_id, kind, copy.seq, summary)


async def add_to_outbox(
    session: AsyncSession, pending: Sequence[PendingEvent], recorded: Sequence[RecordedEvent]
) -> int:
    """Queue a row per opted-in user for each event worth an email; returns how many.

    Call it in the events' transaction, after `eventlog.record`: the campaigns' topics are
    locked then, so two transactions on one campaign see each other's money in order.
    """
    notices: list[_Notice] = []
    money_seq: dict[int, int] = {}
    for item, copy in _on_campaign_topic(pending, recorded):
        notice = _notice(item, copy)
        if notice is not None:
            notices.append(notice)
        if item.extra.get("reason") in _MONEY_REASONS:
            money_seq[item.campaign_id] = copy.seq
    if money_seq:
        notices += await _balance_crossings(session, money_seq)
    if not notices:
        return 0
    recipients = await session.execute(
        select(Campaign.id, User.id)
        .join(User, User.marketer_id == Campaign.marketer_id)
        .join(NotificationSetting, NotificationSetting.user_id == User.id)
        .where(
            Campaign.id.in_({notice.campaign_id for notice in notices}),
            NotificationSetting.email.is_(True),
            User.disabled.is_(False),
        )
    )
    users_of: dict[int, list[int]] = {}
    for campaign_id, user_id in recipients:
        users_of.setdefault(campaign_id, []).append(user_id)
    now = utcnow()
    rows = [
        {
            "user_id": user_id,
            "campaign_id": notice.campaign_id,
            "kind": notice.kind.value,
            "event_seq": notice.seq,
            "summary": notice.summary,
            "created_at": now,
            "state": OutboxState.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
        }
        for notice in notices
        for user_id in users_of.get(notice.campaign_id, ())
    ]
    if rows:
        await session.execute(insert(table(OutboxEntry)), rows)
    return len(rows)


async def _balance_crossings(session: AsyncSession, money_seq: dict[int, int]) -> list[_Notice]:
    """A notice for each campaign whose balance has just fallen below 10 % of its deposits.

    Only the crossing counts: the last state seen is kept per campaign, and a deposit that
    lifts the balance again arms the next crossing.
    """
    deposits = func.sum(
        case((LedgerEntry.kind == LedgerKind.DEPOSIT, LedgerEntry.amount_cents), else_=0)
    )
    totals = await session.execute(
        select(LedgerEntry.campaign_id, func.sum(LedgerEntry.amount_cents), deposits)
        .where(LedgerEntry.campaign_id.in_(money_seq))
        .group_by(LedgerEntry.campaign_id)
    )
    watched = dict(
        (
            await session.execute(
                select(BalanceWatch.campaign_id, BalanceWatch.low).where(
                    BalanceWatch.campaign_id.in_(money_seq)
                )
            )
        ).all()
    )
    notices = []
    changes = []
    for campaign_id, balance_cents, deposit_cents in totals:
        balance, deposited = int(balance_cents or 0), int(deposit_cents or 0)
        low = deposited > 0 and balance * 100 < deposited * LOW_BALANCE_PERCENT
        if low == watched.get(campaign_id, False):
            continue
        changes.append({"campaign_id": campaign_id, "low": low, "changed_at": utcnow()})
        if low:
            summary = (
                f"Balance {balance / 100:,.2f} is below {LOW_BALANCE_PERCENT} % "
                f"of the {deposited / 100:,.2f} deposited"
            )
            notices.append(
                _Notice(campaign_id, NotificationKind.BALANCE_LOW, money_seq[campaign_id], summary)
            )
    if changes:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        upsert = dialect.insert(BalanceWatch)
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[BalanceWatch.campaign_id],
                set_={"low": upsert.excluded.low, "changed_at": upsert.excluded.changed_at},
            ),
            changes,
        )
    return notices


def kind_label(kind: str) -> str:
    """The words for a stored kind, also for a kind this version does not know."""
    try:
        return NotificationKind(kind).label
    except ValueError:
        return kind.replace("_", " ")

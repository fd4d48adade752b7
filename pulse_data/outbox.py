"""The sender's side of the mail outbox: claiming due emails, and marking how each ended.

A row goes pending → claimed → sending → sent, or back to pending for a retry, or failed.
`claimed` means a worker is about to send it and has not handed it to the mail server yet, so
a claim whose worker died is simply claimed again. `sending` is set, and committed, just
before the mail server is given the message: once there, the row is never sent again, even
if the worker dies before it hears the answer (see workers/mail.py).

Claims are made one transaction at a time (SQLite's write lock; on PostgreSQL a
transaction-level advisory lock), so the 5-minute rule per user and campaign holds with any
number of workers; the sending itself runs outside any transaction, in parallel.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_data.database import Database
from pulse_data.models import (
    Campaign,
    Marketer,
    NotificationSetting,
    OutboxEntry,
    OutboxState,
    User,
)
from pulse_data.sqlutil import rowcount

# Any fixed number: the PostgreSQL advisory lock that makes claims take turns.
_CLAIM_LOCK_KEY = 7_140_252
# A claim older than this belongs to a worker that died (sending takes seconds).
CLAIM_LEASE = timedelta(minutes=10)
# Tries per row before it is given up, waiting longer after each failure.
MAX_ATTEMPTS = 6
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
# A row not sent within this long is given up: old news is no news.
MAX_AGE = timedelta(days=1)
# The most events one email lists; the rest wait for the next one.
MAX_ITEMS = 50
_IN_FLIGHT = (OutboxState.CLAIMED, OutboxState.SENDING)
TURNED_OFF = "the user turned email notifications off, or was disabled"
UNKNOWN_OUTCOME = (
    "the worker stopped while the mail server had the message; counted as sent, not sent again"
)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    kind: str
    summary: str
    created_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class ClaimedEmail:
    """The events one user hears about one campaign in one email, claimed by one worker."""

    token: str
    user_id: int
    address: str
    user_name: str
    campaign_id: int
    campaign_title: str
    marketer_name: str
    items: tuple[OutboxItem, ...]

    @property
    def ids(self) -> list[int]:
        return [item.id for item in self.items]


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed try."""
    delay: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, LONGEST_RETRY)


async def has_work(db: Database, *, now: datetime, wait: timedelta) -> bool:
    """Whether a row may go now or a claim ran out (a cheap read that takes no lock)."""
    due = (
        (OutboxEntry.state == OutboxState.PENDING)
        & (OutboxEntry.next_attempt_at <= now)
        & (OutboxEntry.created_at <= now - wait)
    )
    stale = OutboxEntry.state.in_(_IN_FLIGHT) & (OutboxEntry.claimed_at < now - CLAIM_LEASE)
    async with db.reader() as session:
        found = await session.scalar(select(OutboxEntry.id).where(due | stale).limit(1))
    return found is not None


async def claim(
    db: Database, *, now: datetime, wait: timedelta, gap: timedelta, limit: int = 20
) -> list[ClaimedEmail]:
    """Claim up to `limit` emails that may go now, one per user and campaign.

    A pair is due once its oldest pending event is `wait` old (so that the events of a launch,
    seconds apart, share the first email), and `gap` after the last email to that pair. Pairs
    that must wait get their rows' next attempt set to when they may go.
    """
    async with db.writer() as session:
        if not await _take_turn(session):
            return []
        await _recover(session, now)
        pairs = [
            (int(user_id), int(campaign_id))
            for user_id, campaign_id in await session.execute(
                select(OutboxEntry.user_id, OutboxEntry.campaign_id)
                .where(
                    OutboxEntry.state == OutboxState.PENDING,
                    OutboxEntry.next_attempt_at <= now,
                    OutboxEntry.created_at <= now - wait,
                )
                .group_by(OutboxEntry.user_id, OutboxEntry.campaign_id)
                .order_by(func.min(OutboxEntry.id))
                .limit(limit)
            )
        ]
        claimed = await _claim_pairs(session, pairs, now, gap) if pairs else []
        await session.commit()
    return claimed


async def _take_turn(session: AsyncSession) -> bool:
    """Whether this transaction may claim now (SQLite's writer holds its lock already)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    taken = await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK_KEY}
    )
    return bool(taken)


async def _recover(session: AsyncSession, now: datetime) -> None:
    """Settle the claims of workers that died, and give up rows too old to matter."""
    stale = OutboxEntry.claimed_at < now - CLAIM_LEASE
    await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.state == OutboxState.CLAIMED, stale)
        .values(state=OutboxState.PENDING, claim_token=None)
    )
    await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.state == OutboxState.SENDING, stale)
        .values(state=OutboxState.SENT, claim_token=None, last_error=UNKNOWN_OUTCOME)
    )
    await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.state == OutboxState.PENDING, OutboxEntry.created_at < now - MAX_AGE)
        .values(state=OutboxState.FAILED, last_error=f"not sent within {MAX_AGE}: given up")
    )


async def _claim_pairs(
    session: AsyncSession, pairs: list[tuple[int, int]], now: datetime, gap: timedelta
) -> list[ClaimedEmail]:
    user_ids = sorted({user_id for user_id, _ in pairs})
    campaign_ids = sorted({campaign_id for _, campaign_id in pairs})
    wanted = set(pairs)
    in_pairs = (OutboxEntry.user_id.in_(user_ids), OutboxEntry.campaign_id.in_(campaign_ids))

    pending: dict[tuple[int, int], list[OutboxEntry]] = defaultdict(list)
    busy: set[tuple[int, int]] = set()
    rows = await session.scalars(
        select(OutboxEntry)
        .where(*in_pairs, OutboxEntry.state.in_((OutboxState.PENDING, *_IN_FLIGHT)))
        .order_by(OutboxEntry.id)
    )
    for row in rows:
        pair = (row.user_id, row.campaign_id)
        if pair not in wanted:
            continue
        if row.state == OutboxState.PENDING:
            pending[pair].append(row)
        else:
            busy.add(pair)
    last_sent: dict[tuple[int, int], datetime] = {
        (user_id, campaign_id): sent_at
        for user_id, campaign_id, sent_at in await session.execute(
            select(OutboxEntry.user_id, OutboxEntry.campaign_id, func.max(OutboxEntry.sent_at))
            .where(*in_pairs, OutboxEntry.sent_at.is_not(None))
            .group_by(OutboxEntry.user_id, OutboxEntry.campaign_id)
        )
        if sent_at is not None
    }
    people = {
        user_id: (email, name, bool(wants))
        for user_id, email, name, wants in await session.execute(
            select(User.id, User.email, User.name, NotificationSetting.email)
            .outerjoin(NotificationSetting, NotificationSetting.user_id == User.id)
            .where(User.id.in_(user_ids), User.disabled.is_(False))
        )
    }
    campaigns = {
        campaign_id: (title, marketer)
        for campaign_id, title, marketer in await session.execute(
            select(Campaign.id, Campaign.title, Marketer.name)
            .join(Marketer, Marketer.id == Campaign.marketer_id)
            .where(Campaign.id.in_(campaign_ids))
        )
    }

    claimed = []
    for pair in pairs:
        user_id, campaign_id = pair
        rows_of_pair = pending.get(pair, [])
        if pair in busy or not rows_of_pair:
            continue  # its last email is still on its way: wait for the next tick
        person = people.get(user_id)
        if person is None or not person[2]:
            await _set(session, rows_of_pair, state=OutboxState.FAILED, last_error=TURNED_OFF)
            continue
        may_go_at = max(
            [row.next_attempt_at for row in rows_of_pair]
            + ([last_sent[pair] + gap] if pair in last_sent else [])
        )
        if may_go_at > now:
            await _set(session, rows_of_pair, next_attempt_at=may_go_at)
            continue
        chosen = rows_of_pair[:MAX_ITEMS]
        token = secrets.token_hex(16)
        await _set(session, chosen, state=OutboxState.CLAIMED, claim_token=token, claimed_at=now)
        title, marketer = campaigns[campaign_id]
        claimed.append(
            ClaimedEmail(
                token=token,
                user_id=user_id,
                address=person[0],
                user_name=person[1],
                campaign_id=campaign_id,
                campaign_title=title,
                marketer_name=marketer,
                items=tuple(
                    OutboxItem(row.id, row.kind, row.summary, row.created_at, row.attempts)
                    for row in chosen
                ),
            )
        )
    return claimed


async def _set(session: AsyncSession, rows: Sequence[OutboxEntry], **values: object) -> None:
    await session.execute(
        update(OutboxEntry).where(OutboxEntry.id.in_([row.id for row in rows])).values(values)
    )


async def begin_sending(db: Database, email: ClaimedEmail, message_id: str, now: datetime) -> bool:
    """Mark the email `sending`, committed, before the mail server gets it.

    False when the claim was lost (this worker was so slow that its claim ran out and another
    worker took the rows): the caller must not send it then.
    """
    async with db.writer() as session:
        marked = rowcount(
            await session.execute(
                update(OutboxEntry)
                .where(
                    OutboxEntry.id.in_(email.ids),
                    OutboxEntry.claim_token == email.token,
                    OutboxEntry.state == OutboxState.CLAIMED,
                )
                .values(state=OutboxState.SENDING, sent_at=now, message_id=message_id)
            )
        )
        if marked != len(email.ids):
            return False
        await session.commit()
    return True


async def mark_sent(db: Database, email: ClaimedEmail, note: str | None = None) -> None:
    """The mail server took the email (or may have: `note` says so)."""
    async with db.writer() as session:
        await session.execute(
            update(OutboxEntry)
            .where(OutboxEntry.id.in_(email.ids), OutboxEntry.claim_token == email.token)
            .values(state=OutboxState.SENT, claim_token=None, last_error=note)
        )
        await session.commit()


async def mark_not_sent(
    db: Database, email: ClaimedEmail, now: datetime, error: str, *, retry: bool
) -> None:
    """The email did not go: try again later (counting the try), or give it up."""
    by_values: dict[tuple[str, datetime | None], list[int]] = defaultdict(list)
    for item in email.items:
        attempts = item.attempts + 1
        if retry and attempts < MAX_ATTEMPTS:
            by_values[(OutboxState.PENDING, now + retry_delay(attempts))].append(item.id)
        else:
            by_values[(OutboxState.FAILED, None)].append(item.id)
    async with db.writer() as session:
        for (state, next_attempt_at), ids in by_values.items():
            values: dict[str, object] = {
                "state": state,
                "attempts": OutboxEntry.attempts + 1,
                "claim_token": None,
                "sent_at": None,
                "last_error": error[:2000],
            }
            if next_attempt_at is not None:
                values["next_attempt_at"] = next_attempt_at
            await session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id.in_(ids), OutboxEntry.claim_token == email.token)
                .values(values)
            )
        await session.commit()


async def release(db: Database, emails: Sequence[ClaimedEmail]) -> None:
    """Give back claims this worker will not try now (the mail server is down): no try counted."""
    ids = [row_id for email in emails for row_id in email.ids]
    if not ids:
        return
    async with db.writer() as session:
        await session.execute(
            update(OutboxEntry)
            .where(
                OutboxEntry.id.in_(ids),
                OutboxEntry.claim_token.in_([email.token for email in emails]),
                OutboxEntry.state == OutboxState.CLAIMED,
            )
            .values(state=OutboxState.PENDING, claim_token=None)
        )
        await session.commit()


async def prune(db: Database, created_before: datetime) -> int:
    """Forget rows older than the event history's retention, unless a worker holds them.

    Rows that were never sent go too: a deployment without mail keeps no pile of them.
    """
    async with db.writer() as session:
        pruned = rowcount(
            await session.execute(
                delete(OutboxEntry).where(
                    OutboxEntry.created_at < created_before, OutboxEntry.state.not_in(_IN_FLIGHT)
                )
            )
        )
        await session.commit()
    return pruned

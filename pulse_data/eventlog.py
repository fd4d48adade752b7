"""The stored event log: per-topic sequence numbers, the frames, replay and pruning.

Sequence numbers come from `topic_heads`, incremented inside the transaction that makes the
change. The increment locks the topic's row until commit, so two writers on one topic commit
in `seq` order and a rolled-back writer leaves no gap. Topics are locked in sorted order, so
writers that share topics cannot deadlock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import EventName
from pulse_core.protocol import event_frame, utc_now_iso
from pulse_core.stats import CampaignStats
from pulse_core.topics import topics_for_campaign
from pulse_data.models import Campaign, StoredEvent, TopicHead, utcnow


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An event about a campaign, waiting for its transaction to commit."""

    event: EventName
    campaign_id: int
    count: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event stored on one topic, with its frame serialized once."""

    id: int
    topic: str
    seq: int
    frame: str


async def _allocate(session: AsyncSession, topic: str, how_many: int) -> int:
    """Reserve `how_many` seqs on `topic`; returns the last one."""
    dialect = session.get_bind().dialect.name
    upsert = (postgresql if dialect == "postgresql" else sqlite).insert(TopicHead)
    statement = (
        upsert.values(topic=topic, last_seq=how_many)
        .on_conflict_do_update(
            index_elements=[TopicHead.topic], set_={"last_seq": TopicHead.last_seq + how_many}
        )
        .returning(TopicHead.last_seq)
    )
    return int((await session.execute(statement)).scalar_one())


StatsReader = Callable[[set[int]], Awaitable[dict[int, CampaignStats]]]


async def record(
    session: AsyncSession,
    pending: Sequence[PendingEvent],
    read_stats: StatsReader | None = None,
) -> list[RecordedEvent]:
    """Store every pending event on both of its campaign's topics; call just before commit.

    `read_stats` reads the campaigns' stats for the frames once the topics are locked: a
    writer that took a seq before this one has committed by then, so the stats of a later
    seq never miss an earlier change (PostgreSQL reads committed rows statement by statement).
    """
    if not pending:
        return []
    campaign_ids = {item.campaign_id for item in pending}
    owners = await session.execute(
        select(Campaign.id, Campaign.marketer_id).where(Campaign.id.in_(campaign_ids))
    )
    marketer_of = dict(owners.all())
    placed = [
        (item, topic)
        for item in pending
        for topic in topics_for_campaign(item.campaign_id, marketer_of[item.campaign_id])
    ]
    needed = Counter(topic for _, topic in placed)
    next_seq: dict[str, int] = {}
    for topic in sorted(needed):
        last = await _allocate(session, topic, needed[topic])
        next_seq[topic] = last - needed[topic] + 1
    stats = await read_stats(campaign_ids) if read_stats else None

    ts = utc_now_iso()
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for item, topic in placed:
        seq = next_seq[topic]
        next_seq[topic] += 1
        campaign_stats = stats.get(item.campaign_id) if stats else None
        frame = event_frame(
            topic=topic,
            seq=seq,
            event=item.event,
            campaign_id=item.campaign_id,
            ts=ts,
            count=item.count,
            stats=campaign_stats.to_wire() if campaign_stats else None,
            extra=item.extra,
        )
        rows.append(
            {
                "topic": topic,
                "seq": seq,
                "event": item.event.value,
                "campaign_id": item.campaign_id,
                "frame": frame,
                "created_at": now,
                "published": False,
            }
        )
    ids = (
        (
            await session.execute(
                insert(StoredEvent).returning(StoredEvent.id, sort_by_parameter_order=True), rows
            )
        )
        .scalars()
        .all()
    )
    return [
        RecordedEvent(id=row_id, topic=row["topic"], seq=row["seq"], frame=row["frame"])
        for row_id, row in zip(ids, rows, strict=True)
    ]


async def head(session: AsyncSession, topic: str) -> int:
    """The topic's latest seq (0 when nothing was ever published on it)."""
    value = await session.scalar(select(TopicHead.last_seq).where(TopicHead.topic == topic))
    return int(value or 0)


async def oldest_stored(session: AsyncSession, topic: str) -> int | None:
    value = await session.scalar(
        select(func.min(StoredEvent.seq)).where(StoredEvent.topic == topic)
    )
    return None if value is None else int(value)


async def frames_after(
    session: AsyncSession, topic: str, after: int, limit: int
) -> list[RecordedEvent]:
    """Stored events of `topic` with seq > `after`, oldest first."""
    rows = await session.execute(
        select(StoredEvent.id, StoredEvent.topic, StoredEvent.seq, StoredEvent.frame)
        .where(StoredEvent.topic == topic, StoredEvent.seq > after)
        .order_by(StoredEvent.seq)
        .limit(limit)
    )
    return [RecordedEvent(*row) for row in rows]


async def history_gone(session: AsyncSession, topic: str, after: int) -> tuple[bool, int]:
    """Whether events after `after` are no longer all stored; also the topic's head."""
    latest = await head(session, topic)
    if after > latest:
        return True, latest
    if after == latest:
        return False, latest
    oldest = await oldest_stored(session, topic)
    return oldest is None or oldest > after + 1, latest


async def unpublished(
    session: AsyncSession, created_before: datetime, limit: int
) -> list[RecordedEvent]:
    rows = await session.execute(
        select(StoredEvent.id, StoredEvent.topic, StoredEvent.seq, StoredEvent.frame)
        .where(StoredEvent.published.is_(False), StoredEvent.created_at < created_before)
        .order_by(StoredEvent.id)
        .limit(limit)
    )
    return [RecordedEvent(*row) for row in rows]


async def mark_published(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        await session.execute(
            update(StoredEvent).where(StoredEvent.id.in_(list(ids))).values(published=True)
        )


async def prune(session: AsyncSession, created_before: datetime) -> int:
    """Forget published events older than the retention window; topic heads keep counting."""
    result = await session.execute(
        delete(StoredEvent).where(
            StoredEvent.created_at < created_before, StoredEvent.published.is_(True)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)

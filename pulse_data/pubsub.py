"""CampaignPubSub: the subscribe and broadcast functions of the original design.

Broadcasting is transactional: inside `campaign_transaction`, the `broadcast_*` calls collect
events; at the end each event is stored on BOTH of its campaign's topics with the campaign's new
stats, the transaction commits, and only then are the events published on Redis. A publish that
fails leaves the events marked unpublished; the workers' relay publishes them later, so nothing
committed is ever published only to memory. The emails those events call for are queued in
the same transaction (`notifications.add_to_outbox`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.names import EVENTS_CHANNEL, EventName, UpdateReason
from pulse_core.stats import CampaignStats
from pulse_core.topics import campaign_topic, marketer_topic
from pulse_data import eventlog, notifications
from pulse_data.database import Database
from pulse_data.eventlog import PendingEvent, RecordedEvent
from pulse_data.stats import campaign_stats

log = logging.getLogger(__name__)


def subscribe_to_marketer_campaigns(marketer_id: int) -> str:
    """The topic a dashboard subscribes to."""
    return marketer_topic(marketer_id)


def subscribe_to_campaign(campaign_id: int) -> str:
    """The topic a campaign's detail view subscribes to."""
    return campaign_topic(campaign_id)


def encode_announcement(events: Sequence[RecordedEvent]) -> str:
    """One Redis message for a batch: `[[topic, seq, frame], ...]`; frames stay as text."""
    return json.dumps([[event.topic, event.seq, event.frame] for event in events])


def decode_announcement(message: str | bytes) -> list[tuple[str, int, str]]:
    """Parse a Redis message; raises ValueError on anything malformed."""
    data = json.loads(message)
    if not isinstance(data, list):
        raise ValueError("announcement is not a list")
    result = []
    for item in data:
        if (
            not isinstance(item, list)
            or len(item) != 3
            or not isinstance(item[0], str)
            or not isinstance(item[1], int)
            or not isinstance(item[2], str)
        ):
            raise ValueError(f"malformed announcement item: {item!r:.200}")
        result.append((item[0], item[1], item[2]))
    return result


class EventPublisher:
    """Announces committed events to every server through Redis pub/sub."""

    def __init__(self, db: Database, redis: Redis | None) -> None:
        self.db = db
        self.redis = redis

    async def publish(self, events: Sequence[RecordedEvent]) -> bool:
        """Publish and mark as published; on failure leave them for the relay. Never raises."""
        if not events:
            return True
        if self.redis is None:
            return False
        try:
            await self.redis.publish(EVENTS_CHANNEL, encode_announcement(events))
        except (RedisError, OSError) as exc:
            log.warning("could not publish %d events (the relay will retry): %s", len(events), exc)
            return False
        try:
            async with self.db.writer() as session:
                await eventlog.mark_published(session, [event.id for event in events])
                await session.commit()
        except Exception:
            # Published but not marked: the relay publishes again and servers drop the duplicates.
            log.exception("published %d events but could not mark them", len(events))
        return True


class CampaignEvents:
    """The events of one transaction, collected by the `broadcast_*` calls."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.pending: list[PendingEvent] = []
        self.recorded: list[RecordedEvent] = []

    def broadcast_campaign_updated(
        self, campaign_id: int, *, reason: UpdateReason | None = None, **extra: Any
    ) -> None:
        fields = {"reason": reason.value, **extra} if reason else extra
        self.pending.append(PendingEvent(EventName.CAMPAIGN_UPDATED, campaign_id, extra=fields))

    def broadcast_target_populated(self, campaign_id: int, **extra: Any) -> None:
        self.pending.append(PendingEvent(EventName.TARGET_POPULATED, campaign_id, extra=extra))

    def broadcast_offers_created(self, campaign_id: int, count: int, **extra: Any) -> None:
        self.pending.append(PendingEvent(EventName.OFFERS_CREATED, campaign_id, count, extra))


@asynccontextmanager
async def campaign_transaction(
    db: Database, publisher: EventPublisher | None
) -> AsyncIterator[CampaignEvents]:
    """A write transaction whose broadcasts are stored with it and published after commit."""
    async with db.writer() as session:
        events = CampaignEvents(session)
        yield events
        if events.pending:

            async def read_stats(ids: set[int]) -> dict[int, CampaignStats]:
                return await campaign_stats(session, campaign_ids=ids)

            events.recorded = await eventlog.record(session, events.pending, read_stats)
            await notifications.add_to_outbox(session, events.pending, events.recorded)
        await session.commit()
    if publisher is not None:
        await publisher.publish(events.recorded)

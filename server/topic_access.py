"""Who may read a topic: only the users of the marketer that owns it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from pulse_core.topics import Topic
from pulse_data.campaigns import campaign_marketer
from server.security import Principal


async def may_read(session: AsyncSession, user: Principal, topic: Topic) -> bool:
    if topic.marketer_id is not None:
        return topic.marketer_id == user.marketer_id
    assert topic.campaign_id is not None
    return await campaign_marketer(session, topic.campaign_id) == user.marketer_id

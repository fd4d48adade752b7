"""Who may read a topic: only the users of the marketer that owns it."""

from __future__ import annotations

from typing import Protocol

from pulse_core.topics import Topic
from pulse_data.campaigns import campaign_marketer
from pulse_data.database import Database

OWNERS_REMEMBERED = 100_000


class Reader(Protocol):
    """Anyone who reads as a user of one marketer."""

    @property
    def marketer_id(self) -> int: ...


class TopicAccess:
    """Answers "may this user read this topic?" for one server.

    A campaign never changes hands, so the owner of every campaign asked about is remembered
    (the most recent `capacity` of them): the subscriptions of thousands of clients coming back
    after a restart cost one query per campaign, not one per client.
    """

    def __init__(self, db: Database, capacity: int = OWNERS_REMEMBERED) -> None:
        self._db = db
        self._capacity = capacity
        self._owners: dict[int, int] = {}

    async def may_read(self, user: Reader, topic: Topic) -> bool:
        if topic.marketer_id is not None:
            return topic.marketer_id == user.marketer_id
        assert topic.campaign_id is not None
        owner = self._owners.get(topic.campaign_id)
        if owner is None:
            async with self._db.lookup() as session:
                owner = await campaign_marketer(session, topic.campaign_id)
            if owner is None:
                return False
            if len(self._owners) >= self._capacity:
                del self._owners[next(iter(self._owners))]  # the oldest
            self._owners[topic.campaign_id] = owner
        return owner == user.marketer_id

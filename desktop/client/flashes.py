"""Flash messages: which events become one, and the queue that shows them one at a time.

The queue keeps each flash on screen long enough to read, merges repeats of the same text
into one with a count, and caps how many wait so that a burst cannot bury the newest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from desktop.client.models import EventFrame
from pulse_core import messages
from pulse_core.names import EventName, UpdateReason

READING_CHARS_PER_SECOND = 15.0
MIN_SECONDS = 4.0
MAX_SECONDS = 10.0


class FlashLevel(StrEnum):
    INFO = "info"
    SUCCESS = "success"
    ERROR = "error"


@dataclass(slots=True)
class Flash:
    """One message for the banner; `repeats` counts merged duplicates."""

    text: str
    level: FlashLevel = FlashLevel.INFO
    campaign_id: int | None = None
    campaign_title: str | None = None
    repeats: int = 1

    @property
    def display_seconds(self) -> float:
        """Long enough to read at a relaxed pace, within sane bounds."""
        words = len(self.text) + len(self.campaign_title or "")
        return max(MIN_SECONDS, min(MAX_SECONDS, 1.5 + words / READING_CHARS_PER_SECOND))

    def same_as(self, other: Flash) -> bool:
        return (self.text, self.campaign_id, self.level) == (
            other.text,
            other.campaign_id,
            other.level,
        )


def flash_for_event(frame: EventFrame, title: str | None, *, own_refresh: bool) -> Flash | None:
    """The seed's flash for an event of the marketer topic, or None for silent updates."""
    if frame.event == EventName.TARGET_POPULATED:
        return Flash(messages.TARGET_POPULATED, FlashLevel.INFO, frame.campaign_id, title)
    if frame.event == EventName.OFFERS_CREATED:
        text = messages.offers_created(frame.count or 0)
        return Flash(text, FlashLevel.SUCCESS, frame.campaign_id, title)
    if (
        frame.event == EventName.CAMPAIGN_UPDATED
        and frame.reason == UpdateReason.OFFERS_REFRESHED
        and own_refresh
        and not frame.created
    ):
        text = messages.refresh_finished_nothing_new(title or f"campaign {frame.campaign_id}")
        return Flash(text, FlashLevel.INFO, frame.campaign_id, title)
    return None


@dataclass
class FlashQueue:
    """The flash on screen and the ones waiting, oldest first; `recent` keeps every push."""

    max_waiting: int = 20
    current: Flash | None = None
    skipped: int = 0
    recent: deque[Flash] = field(default_factory=lambda: deque(maxlen=200))
    _waiting: deque[Flash] = field(default_factory=deque)
    _listeners: list[Callable[[], None]] = field(default_factory=list)

    def add_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def waiting_flashes(self) -> list[Flash]:
        return list(self._waiting)

    def push(self, flash: Flash) -> None:
        """Show now if nothing is shown; merge with an identical one; else wait in line."""
        self.recent.append(flash)
        if self.current is not None and self.current.same_as(flash):
            self.current.repeats += flash.repeats
        elif twin := next((f for f in self._waiting if f.same_as(flash)), None):
            twin.repeats += flash.repeats
        elif self.current is None:
            self.current = flash
        else:
            self._waiting.append(flash)
            while len(self._waiting) > self.max_waiting:
                self._waiting.popleft()
                self.skipped += 1
        self._changed()

    def advance(self) -> Flash | None:
        """Done with the current flash: show the next one (or nothing)."""
        self.current = self._waiting.popleft() if self._waiting else None
        if self.current is None:
            self.skipped = 0
        self._changed()
        return self.current

    def clear(self) -> None:
        self.current = None
        self._waiting.clear()
        self.skipped = 0
        self._changed()

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

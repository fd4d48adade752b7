"""What one window does with a batch of live events, without Qt.

The UI feeds batches of marketer-topic events (coalesced on a short timer) to `Dashboard`;
it updates the store (one change per row), queues the seed's flashes and returns what else
to do: which campaigns to fetch, and which alerts to raise outside the window.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from desktop.client.alerts import AlertDecision, AlertRouter, WindowContext, alert_kind
from desktop.client.flashes import Flash, FlashLevel, FlashQueue, flash_for_event
from desktop.client.models import EventFrame
from desktop.client.store import CampaignStore
from pulse_core import messages
from pulse_core.names import EventName, UpdateReason

REMEMBERED_REFRESHES = 200


@dataclass(frozen=True, slots=True)
class Alert:
    """An event the user may want to hear about outside the banner."""

    flash: Flash
    decision: AlertDecision


@dataclass(slots=True)
class BatchResult:
    fetch: set[int] = field(default_factory=set)
    alerts: list[Alert] = field(default_factory=list)


class RefreshTracker:
    """Matches the end of an offer refresh to the click that started it.

    The server's 202 answer and the `offers_refreshed` event race each other, so finished
    refreshes are remembered for a while too.
    """

    def __init__(self) -> None:
        self._started: OrderedDict[str, int] = OrderedDict()
        self._finished: OrderedDict[str, int] = OrderedDict()

    @staticmethod
    def _key(campaign_id: int, request_id: str | None) -> str:
        return request_id or f"campaign:{campaign_id}"

    def started(self, campaign_id: int, request_id: str | None) -> int | None:
        """Record a click; returns the created count when that refresh already finished."""
        key = self._key(campaign_id, request_id)
        if key in self._finished:
            return self._finished.pop(key)
        self._remember(self._started, key, campaign_id)
        return None

    def finished(self, frame: EventFrame) -> bool:
        """Record the end of a refresh; True when this window started it."""
        for key in (frame.request_id, self._key(frame.campaign_id, None)):
            if key is not None and key in self._started:
                del self._started[key]
                return True
        if frame.request_id:
            self._remember(self._finished, frame.request_id, frame.created or 0)
        return False

    @staticmethod
    def _remember(table: OrderedDict[str, int], key: str, value: int) -> None:
        table[key] = value
        while len(table) > REMEMBERED_REFRESHES:
            table.popitem(last=False)


class Dashboard:
    """The campaign grid's state and its flashes, fed by batches of events."""

    def __init__(
        self,
        store: CampaignStore | None = None,
        flashes: FlashQueue | None = None,
        router: AlertRouter | None = None,
    ) -> None:
        self.store = store or CampaignStore()
        self.flashes = flashes or FlashQueue()
        self.router = router or AlertRouter()
        self.refreshes = RefreshTracker()

    def title_of(self, campaign_id: int) -> str | None:
        campaign = self.store.get(campaign_id)
        return campaign.title if campaign else None

    def apply(self, frames: Iterable[EventFrame], context: WindowContext) -> BatchResult:
        frames = list(frames)
        result = BatchResult(fetch=self.store.apply_events(frames))
        for frame in frames:
            own = (
                frame.event == EventName.CAMPAIGN_UPDATED
                and frame.reason == UpdateReason.OFFERS_REFRESHED
                and self.refreshes.finished(frame)
            )
            flash = flash_for_event(frame, self.title_of(frame.campaign_id), own_refresh=own)
            kind = alert_kind(frame)
            if flash is None or kind is None:
                continue
            decision = self.router.route(kind, flash, context)
            if decision.flash:
                self.flashes.push(flash)
            if decision.notify or decision.sound or decision.unread:
                result.alerts.append(Alert(flash, decision))
        return result

    # ---- the user's own actions ---------------------------------------------------------

    def launched(self, campaign_id: int, message: str) -> None:
        text = message or messages.LAUNCHED_POPULATING
        self.flashes.push(Flash(text, FlashLevel.INFO, campaign_id, self.title_of(campaign_id)))

    def refresh_started(self, campaign_id: int, message: str, request_id: str | None) -> None:
        title = self.title_of(campaign_id)
        text = message or messages.refreshing_offers(title or "")
        self.flashes.push(Flash(text, FlashLevel.INFO, campaign_id, title))
        created = self.refreshes.started(campaign_id, request_id)
        if created == 0:
            done = messages.refresh_finished_nothing_new(title or f"campaign {campaign_id}")
            self.flashes.push(Flash(done, FlashLevel.INFO, campaign_id, title))

    def failed(self, message: str, campaign_id: int | None = None) -> None:
        title = self.title_of(campaign_id) if campaign_id is not None else None
        self.flashes.push(Flash(message, FlashLevel.ERROR, campaign_id, title))

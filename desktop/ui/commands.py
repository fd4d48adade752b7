"""What the campaign actions do: the requests, the busy state and the flashes they leave.

`CampaignCommands` sends each request through the bridge and reports its answer on the
dashboard's flashes; while a campaign's request is under way it counts as busy, so that its
actions stay disabled until the answer comes back.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.client.dashboard import Dashboard
from desktop.client.errors import ClientError
from desktop.client.models import Campaign
from desktop.ui.bridge import ClientBridge


class CampaignCommands(QObject):
    """Requests about campaigns, from the GUI thread."""

    busyChanged = Signal()

    def __init__(self, bridge: ClientBridge, dashboard: Dashboard, parent: QObject | None = None):
        super().__init__(parent)
        self.bridge = bridge
        self.dashboard = dashboard
        self._busy: set[int] = set()

    def is_busy(self, campaign_id: int) -> bool:
        return campaign_id in self._busy

    def _start(self, campaign_id: int) -> None:
        self._busy.add(campaign_id)
        self.busyChanged.emit()

    def _finish(self, campaign_id: int) -> None:
        self._busy.discard(campaign_id)
        self.busyChanged.emit()

    def launch(self, campaign: Campaign) -> None:
        if not campaign.can_launch or self.is_busy(campaign.id):
            return
        self._start(campaign.id)

        def done(message: Any, error: BaseException | None) -> None:
            self._finish(campaign.id)
            if error is not None:
                self.dashboard.failed(error_text(error, "launch"), campaign.id)
            else:
                self.dashboard.launched(campaign.id, message)
            self.bridge.fetch_campaign(campaign.id)

        self.bridge.launch(campaign.id, done)

    def refresh_offers(self, campaign: Campaign) -> None:
        if not campaign.can_refresh_offers or self.is_busy(campaign.id):
            return
        self._start(campaign.id)

        def done(answer: Any, error: BaseException | None) -> None:
            self._finish(campaign.id)
            if error is not None:
                self.dashboard.failed(error_text(error, "refresh offers for"), campaign.id)
                return
            message, request_id = answer
            self.dashboard.refresh_started(campaign.id, message, request_id)

        self.bridge.refresh_offers(campaign.id, done)


def error_text(error: BaseException, verb: str) -> str:
    """What to tell the user about a failed request to `verb` a campaign."""
    if isinstance(error, ClientError):
        return error.message
    return f"Could not {verb} the campaign: {error}"

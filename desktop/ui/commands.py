"""What the campaign actions do: the requests, the busy state and the flashes they leave.

`CampaignCommands` sends each request through the bridge and reports its answer on the
dashboard's flashes; while a campaign's request is under way it counts as busy, so that its
actions stay disabled until the answer comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.client.access import forbidden_text
from desktop.client.campaign_forms import money
from desktop.client.dashboard import Dashboard
from desktop.client.errors import ClientError, ForbiddenError
from desktop.client.flashes import Flash, FlashLevel
from desktop.client.models import Campaign
from desktop.ui.bridge import ClientBridge, Done

# pause / resume / archive: the route's last word, the verb for errors, the flash on success.
STATE_CHANGES = {
    "pause": ("pause", "paused"),
    "resume": ("resume", "resumed"),
    "archive": ("archive", "archived"),
}


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

    # ---- changes from the dialogs and the state actions ---------------------------------

    def create(self, body: dict[str, Any], done: Done) -> None:
        """Create a campaign; `done(campaign, error)` lets the dialog show a refusal."""

        def created(campaign: Any, error: BaseException | None) -> None:
            if error is None:
                self._say("Campaign created", campaign.id, FlashLevel.SUCCESS)
            done(campaign, error)

        self.bridge.call(self.bridge.session.create_campaign(body), created)

    def edit(self, campaign: Campaign, body: dict[str, Any], done: Done) -> None:
        self._request(
            campaign,
            self.bridge.session.edit_campaign(campaign.id, body),
            lambda _answer: "Changes saved",
            done,
        )

    def change_state(self, campaign: Campaign, action: str) -> None:
        """Pause, resume or archive (`action`); the flash says how it went."""
        verb, done_word = STATE_CHANGES[action]

        def done(_answer: Any, error: BaseException | None) -> None:
            if error is not None:
                self.dashboard.failed(error_text(error, verb), campaign.id)

        self._request(
            campaign,
            self.bridge.session.change_state(campaign.id, action),
            lambda _answer: f"Campaign {done_word}",
            done,
        )

    def deposit(self, campaign: Campaign, body: dict[str, Any], done: Done) -> None:
        self._request(
            campaign,
            self.bridge.session.deposit(campaign.id, body),
            lambda answer: (
                f"Deposit of {money(int(answer.get('amount_cents') or 0))} added: "
                f"balance {money(int(answer.get('balance_cents') or 0))}"
            ),
            done,
        )

    def _request(
        self, campaign: Campaign, coro: Any, success: Callable[[Any], str], done: Done
    ) -> None:
        """Send `coro` for `campaign` (busy meanwhile); flash `success(answer)` when it works."""
        self._start(campaign.id)

        def finished(answer: Any, error: BaseException | None) -> None:
            self._finish(campaign.id)
            if error is None:
                self._say(success(answer), campaign.id, FlashLevel.SUCCESS)
            done(answer, error)

        self.bridge.call(coro, finished)

    def _say(self, text: str, campaign_id: int, level: FlashLevel = FlashLevel.INFO) -> None:
        title = self.dashboard.title_of(campaign_id)
        self.dashboard.flashes.push(Flash(text, level, campaign_id, title))


def error_text(error: BaseException, verb: str, what: str = "the campaign") -> str:
    """What to tell the user about a failed request to `verb` a campaign."""
    if isinstance(error, ForbiddenError):
        return forbidden_text(f"{verb} {what}", error.message)
    if isinstance(error, ClientError):
        return error.message
    return f"Could not {verb} {what}: {error}"

"""The campaign actions of the main window, and when each may be used.

`CampaignActions` makes the `QAction`s once; `update()` enables each for the selected campaign
and the user's role. An action the role may not take stays disabled with the reason in its
tooltip; one that does not fit the campaign's state says that instead.
Menus, the toolbar and the grid's context menu all share these same actions.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence

from desktop.client.access import CampaignAction, role_refusal, state_refusal
from desktop.client.models import Campaign
from pulse_core.roles import Role


class CampaignActions(QObject):
    """New, Edit, Launch, Refresh offers, Pause, Resume, Archive, Deposit and Open details."""

    def __init__(self, parent: QObject | None = None, *, role: Role | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.new = _action(self, "&New Campaign…", "Ctrl+N", "Create a campaign")
        self.edit = _action(
            self, "&Edit Campaign…", "Ctrl+E", "Change the selected campaign's title, dates or bids"
        )
        self.launch = _action(
            self, "&Launch Campaign…", "Ctrl+L", "Launch the selected campaign (asks first)"
        )
        self.refresh = _action(
            self, "&Refresh Offers", "Ctrl+R", "Create offers for new members of the target"
        )
        self.pause = _action(self, "&Pause", "", "Stop the selected campaign's offers going live")
        self.resume = _action(self, "Res&ume", "", "Let the selected campaign's offers go live")
        self.archive = _action(
            self, "&Archive…", "", "End the selected campaign for good (asks first)"
        )
        self.deposit = _action(
            self, "Add &Deposit…", "", "Add money to the selected campaign's balance"
        )
        self.details = _action(
            self, "Open &Details", "Ctrl+D", "Live chart and history of the selected campaign"
        )
        self._kinds = {
            self.new: CampaignAction.NEW,
            self.edit: CampaignAction.EDIT,
            self.launch: CampaignAction.LAUNCH,
            self.refresh: CampaignAction.REFRESH,
            self.pause: CampaignAction.PAUSE,
            self.resume: CampaignAction.RESUME,
            self.archive: CampaignAction.ARCHIVE,
            self.deposit: CampaignAction.DEPOSIT,
        }
        self._tips = {action: (action.toolTip(), action.statusTip()) for action in self._kinds}
        for action in self.for_selection():
            action.setEnabled(False)
        self.update(None, busy=False)

    def for_selection(self) -> tuple[QAction, ...]:
        """The actions that act on the selected campaign, in menu order."""
        return (self.launch, self.refresh, self.details)

    def for_changes(self) -> tuple[QAction, ...]:
        """The actions that change the selected campaign's settings, state or money."""
        return (self.edit, self.pause, self.resume, self.archive, self.deposit)

    def reason(self, action: QAction, campaign: Campaign | None) -> str | None:
        """Why `action` is disabled for `campaign` and this role, or None when it is not."""
        kind = self._kinds.get(action)
        if kind is None:
            return None
        refusal = role_refusal(self.role, kind)
        if refusal is not None:
            return refusal
        if kind is CampaignAction.NEW:
            return None
        if campaign is None:
            return "Select a campaign first"
        return state_refusal(kind, campaign)

    def update(self, campaign: Campaign | None, *, busy: bool) -> None:
        """Enable what fits `campaign` (None: nothing selected; busy: a request is under way)."""
        for action, (tip, status_tip) in self._tips.items():
            reason = self.reason(action, campaign)
            idle = action is self.new or not busy
            action.setEnabled(reason is None and idle)
            action.setToolTip(tip if reason is None else f"{tip}\n{reason}")
            action.setStatusTip(status_tip if reason is None else reason)
        self.details.setEnabled(campaign is not None)


def _action(parent: QObject, text: str, shortcut: str, tip: str) -> QAction:
    action = QAction(text, parent)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip} ({shortcut})")
    else:
        action.setToolTip(tip)
    action.setStatusTip(tip)
    return action

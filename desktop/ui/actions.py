"""The campaign actions of the main window, and when each may be used.

`CampaignActions` makes the `QAction`s once; `update()` enables each for the selected campaign.
Menus, the toolbar and the grid's context menu all share these same actions.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence

from desktop.client.models import Campaign


class CampaignActions(QObject):
    """Launch, Refresh offers and Open details for the selected campaign."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.launch = _action(self, "&Launch Campaign", "Ctrl+L", "Launch the selected campaign")
        self.refresh = _action(
            self, "&Refresh Offers", "Ctrl+R", "Create offers for new members of the target"
        )
        self.details = _action(
            self, "Open &Details", "Ctrl+D", "Live chart and history of the selected campaign"
        )
        for action in self.for_selection():
            action.setEnabled(False)

    def for_selection(self) -> tuple[QAction, ...]:
        """The actions that act on the selected campaign."""
        return (self.launch, self.refresh, self.details)

    def update(self, campaign: Campaign | None, *, busy: bool) -> None:
        """Enable what fits `campaign` (None: nothing selected; busy: a request is under way)."""
        self.launch.setEnabled(bool(campaign and campaign.can_launch and not busy))
        self.refresh.setEnabled(bool(campaign and campaign.can_refresh_offers and not busy))
        self.details.setEnabled(campaign is not None)


def _action(parent: QObject, text: str, shortcut: str, tip: str) -> QAction:
    action = QAction(text, parent)
    action.setShortcut(QKeySequence(shortcut))
    action.setToolTip(f"{tip} ({shortcut})")
    action.setStatusTip(tip)
    return action

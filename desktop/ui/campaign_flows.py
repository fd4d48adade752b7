"""What the campaign actions open: the New / Edit dialog, the launch confirmation, the archive
question and the deposit dialog; each sends its request through `CampaignCommands`.

Dialogs open window-modal without blocking (`open()`); the one on screen is `dialog`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QDialog, QMessageBox, QWidget

from desktop.client.models import Campaign
from desktop.client.store import CampaignStore
from desktop.ui.actions import CampaignActions
from desktop.ui.bridge import ClientBridge, Done
from desktop.ui.campaign_dialog import CampaignDialog
from desktop.ui.commands import CampaignCommands
from desktop.ui.deposit_dialog import DepositDialog
from desktop.ui.launch_dialog import LaunchDialog

ARCHIVE_QUESTION = (
    "An archived campaign stops for good: its offers end, and it cannot be resumed, edited or "
    "funded again. This cannot be undone."
)


class CampaignFlows(QObject):
    """Opens the campaign dialogs of one window and sends what they confirm."""

    def __init__(
        self,
        window: QWidget,
        bridge: ClientBridge,
        commands: CampaignCommands,
        actions: CampaignActions,
        store: CampaignStore,
        selected: Callable[[], Campaign | None],
        select: Callable[[int], bool],
    ) -> None:
        super().__init__(window)
        self.window = window
        self.bridge = bridge
        self.commands = commands
        self.store = store
        self.selected = selected
        self.select = select
        self.dialog: QDialog | None = None
        actions.new.triggered.connect(self.new_campaign)
        actions.edit.triggered.connect(self.edit_selected)
        actions.launch.triggered.connect(self.confirm_launch)
        actions.pause.triggered.connect(lambda: self.change_state("pause"))
        actions.resume.triggered.connect(lambda: self.change_state("resume"))
        actions.archive.triggered.connect(self.confirm_archive)
        actions.deposit.triggered.connect(self.deposit_selected)

    def _open(self, dialog: QDialog) -> QDialog:
        if self.dialog is not None:
            self.dialog.close()
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.setWindowIcon(self.window.windowIcon())
        self.dialog = dialog
        dialog.finished.connect(lambda _result: self._closed(dialog))
        dialog.open()
        return dialog

    def _closed(self, dialog: QDialog) -> None:
        if self.dialog is dialog:
            self.dialog = None

    def _load_details(self, campaign_id: int) -> Callable[[Done], None]:
        return lambda done: self.bridge.call(
            self.bridge.session.campaign_details(campaign_id), done
        )

    # ---- the flows ----------------------------------------------------------------------

    def new_campaign(self) -> CampaignDialog:
        dialog = CampaignDialog(
            send=self.commands.create,
            load_targets=lambda done: self.bridge.call(self.bridge.session.targets(), done),
            parent=self.window,
        )
        dialog.saved.connect(lambda campaign: self.select(campaign.id))
        self._open(dialog)
        return dialog

    def edit_selected(self) -> CampaignDialog | None:
        campaign = self.selected()
        if campaign is None:
            return None

        def send(body: dict[str, Any], done: Done) -> None:
            self.commands.edit(campaign, body, done)

        dialog = CampaignDialog(
            send=send,
            load_details=self._load_details(campaign.id),
            campaign=campaign,
            parent=self.window,
        )
        self._open(dialog)
        return dialog

    def confirm_launch(self) -> LaunchDialog | None:
        """Ask, showing the audience and the spend at stake; launch only on Launch."""
        campaign = self.selected()
        if campaign is None or not campaign.can_launch or self.commands.is_busy(campaign.id):
            return None
        dialog = LaunchDialog(campaign, self._load_details(campaign.id), self.window)
        dialog.accepted.connect(lambda: self._launch(campaign.id))
        self._open(dialog)
        return dialog

    def _launch(self, campaign_id: int) -> None:
        campaign = self.store.get(campaign_id)
        if campaign is not None:
            self.commands.launch(campaign)

    def change_state(self, action: str) -> None:
        """Pause or resume the selected campaign: no question, both can be undone."""
        campaign = self.selected()
        if campaign is not None and not self.commands.is_busy(campaign.id):
            self.commands.change_state(campaign, action)

    def confirm_archive(self) -> QMessageBox | None:
        campaign = self.selected()
        if campaign is None or self.commands.is_busy(campaign.id):
            return None
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Archive campaign — Campaign Pulse",
            f"Archive “{campaign.title}”?",
            QMessageBox.StandardButton.Cancel,
            self.window,
        )
        box.setInformativeText(ARCHIVE_QUESTION)
        archive = box.addButton("Archive", QMessageBox.ButtonRole.DestructiveRole)
        archive.setAccessibleName("Archive")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        box.setAccessibleName("Confirm archiving")
        box.buttonClicked.connect(
            lambda button: (
                self.commands.change_state(campaign, "archive") if button is archive else None
            )
        )
        self._open(box)
        return box

    def deposit_selected(self) -> DepositDialog | None:
        campaign = self.selected()
        if campaign is None:
            return None

        def send(body: dict[str, Any], done: Done) -> None:
            self.commands.deposit(campaign, body, done)

        dialog = DepositDialog(campaign, send, self.window)
        self._open(dialog)
        return dialog

"""The confirmation before a launch: the target's audience, the spend at stake, the balance.

It shows what the grid's row knows at once, then the campaign's bids (one request) to work out
the spend as the server will. Nothing is sent unless the user presses Launch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.client.campaign_forms import BidInfo
from desktop.client.errors import ClientError
from desktop.client.launch_check import LaunchPreview, launch_preview
from desktop.client.models import Campaign
from desktop.ui.form_widgets import FieldMessage

Done = Callable[[Any, BaseException | None], None]
Loader = Callable[[Done], None]


class LaunchDialog(QDialog):
    """Asks before launching `campaign`; `accepted` means: launch it."""

    def __init__(
        self, campaign: Campaign, load_details: Loader | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.campaign = campaign
        self.setWindowTitle(f"Launch {campaign.title}? — Campaign Pulse")
        self.setAccessibleName("Confirm the launch")
        self.heading = QLabel()
        self.heading.setWordWrap(True)
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        explanation = QLabel(
            "Launching counts the target's members if needed, then creates one pending offer "
            "per member at the bid of the member's band. The offers go live shortly after and "
            "spend from the campaign's balance."
        )
        explanation.setWordWrap(True)
        self.values: dict[str, QLabel] = {}
        form = QFormLayout()
        for label, _text in launch_preview(campaign, None).rows():
            value = QLabel()
            value.setWordWrap(True)
            value.setAccessibleName(label)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[label] = value
            form.addRow(f"{label}:", value)
        self.warning = FieldMessage("Warning")
        self.status = FieldMessage("Status")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.launch_button: QPushButton = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.launch_button.setText("Launch")
        self.launch_button.setAccessibleName("Launch")
        self.launch_button.setDefault(True)
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setAccessibleName("Cancel")
        self.buttons.accepted.connect(self.confirm)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(explanation)
        layout.addLayout(form)
        layout.addWidget(self.warning)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(520)

        self.bids: tuple[BidInfo, ...] | None = None
        self.closed = False
        self.loaded = load_details is None
        self.preview: LaunchPreview = launch_preview(campaign, None)
        self._show(campaign, None)
        if load_details is not None:
            self.status.show_note("Reading the campaign's bids…")
            load_details(self._details_loaded)
        self.launch_button.setFocus()

    def _show(self, campaign: Campaign, bids: tuple[BidInfo, ...] | None) -> None:
        preview = launch_preview(campaign, bids)
        self.heading.setText(f"Launch “{campaign.title}”?")
        for label, text in preview.rows():
            self.values[label].setText(text)
        if preview.warning:
            self.warning.show_error(preview.warning)
        else:
            self.warning.clear_message()
        self.preview = preview

    def _details_loaded(self, details: Any, error: BaseException | None) -> None:
        if self.closed:  # answered after the dialog went away
            return
        self.loaded = True
        if error is not None:
            text = error.message if isinstance(error, ClientError) else str(error)
            self.status.show_error(f"Could not read the bids: {text}")
            return
        self.campaign = details.campaign
        self.bids = details.bids
        self._show(self.campaign, self.bids)
        self.status.clear_message()
        if not self.campaign.can_launch:
            self.status.show_error(
                f"This campaign is {self.campaign.state.label.lower()} now: "
                "it can no longer be launched."
            )
            self.launch_button.setEnabled(False)

    def done(self, result: int) -> None:
        self.closed = True
        super().done(result)

    def confirm(self) -> None:
        """Launch: close the dialog accepted (the caller sends the launch)."""
        if self.launch_button.isEnabled():
            self.accept()

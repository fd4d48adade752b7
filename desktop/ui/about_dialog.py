"""Help → About: version, server, account, live connection state, and the log for support."""

from __future__ import annotations

import platform
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.client.live import LinkState, LinkStatus
from desktop.logs import log_file
from desktop.ui.bridge import ClientBridge
from desktop.ui.resources import app_icon
from pulse_core import version as app_version

STATE_TEXT = {
    LinkState.CONNECTED: "Live",
    LinkState.CONNECTING: "Connecting…",
    LinkState.RECONNECTING: "Reconnecting…",
    LinkState.OFFLINE: "Offline",
}


def connection_text(status: LinkStatus) -> str:
    reason = (
        f" — {status.reason}" if status.reason and status.state is not LinkState.CONNECTED else ""
    )
    return STATE_TEXT[status.state] + reason


def open_folder(folder: Path) -> bool:
    """Show `folder` in the system's file manager (made first if need be)."""
    folder.mkdir(parents=True, exist_ok=True)
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))


class AboutDialog(QDialog):
    """What support asks for first; the connection line follows the live link while open."""

    def __init__(
        self,
        bridge: ClientBridge,
        status: LinkStatus,
        *,
        log_path: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Campaign Pulse")
        self.bridge = bridge
        self.log_folder = (log_path or log_file()).parent
        user = bridge.user
        self.values: dict[str, QLabel] = {}
        form = QFormLayout()
        rows = {
            "Version": app_version(),
            "Server": bridge.server_url,
            "Signed in as": f"{user.email} ({user.display_name})" if user else "Not signed in",
            "Connection": connection_text(status),
            "Qt": f"{qVersion()} (PySide6 {PySide6.__version__})",
            "Python": f"{platform.python_version()} on {platform.platform(terse=True)}",
            "Log folder": str(self.log_folder),
        }
        for name, text in rows.items():
            value = QLabel(text)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setAccessibleName(name)
            value.setWordWrap(True)
            self.values[name] = value
            form.addRow(f"{name}:", value)

        heading = QLabel(f"<h2>Campaign Pulse {app_version()}</h2>Live campaign dashboard")
        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(64, 64))
        icon.setAccessibleName("Campaign Pulse icon")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.open_log_button = QPushButton("Open Log Folder")
        self.open_log_button.setAccessibleName("Open log folder")
        self.open_log_button.clicked.connect(self.open_log_folder)
        self.copy_button = QPushButton("Copy Details")
        self.copy_button.setAccessibleName("Copy details for support")
        self.copy_button.setToolTip("Copy these details to paste into a message to support")
        self.copy_button.clicked.connect(self.copy_details)
        buttons.addButton(self.open_log_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        close = buttons.button(QDialogButtonBox.StandardButton.Close)
        close.setAccessibleName("Close")

        layout = QVBoxLayout(self)
        layout.addWidget(icon, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(heading, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.setMinimumWidth(460)
        bridge.statusChanged.connect(self._on_status)

    def text(self, name: str) -> str:
        return self.values[name].text()

    def details(self) -> str:
        """The details as plain text, one `name: value` a line."""
        return "\n".join(f"{name}: {label.text()}" for name, label in self.values.items())

    def copy_details(self) -> None:
        QGuiApplication.clipboard().setText(self.details())

    def open_log_folder(self) -> bool:
        return open_folder(self.log_folder)

    def _on_status(self, status: LinkStatus) -> None:
        self.values["Connection"].setText(connection_text(status))

    def done(self, result: int) -> None:
        if self.isVisible():
            self.bridge.statusChanged.disconnect(self._on_status)
        super().done(result)

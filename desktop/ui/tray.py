"""The system-tray icon: Open, Mute alerts, Quit; unread count; notifications that open a campaign.

Without a system tray (many Linux desktops, offscreen tests) `Tray` does nothing and says so
with `available`, and the window simply stays open.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from desktop.client.flashes import Flash

NOTIFICATION_MS = 8000


def tray_supported() -> bool:
    return QSystemTrayIcon.isSystemTrayAvailable()


class Tray(QObject):
    """Owns the QSystemTrayIcon when there is a tray."""

    openRequested = Signal()
    campaignRequested = Signal(int)
    quitRequested = Signal()
    muteToggled = Signal(bool)

    def __init__(self, icon: QIcon, title: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.unread = 0
        self.notified: list[Flash] = []
        self._last_campaign: int | None = None
        self.available = tray_supported()
        self.menu = QMenu()
        self.menu.setAccessibleName("Campaign Pulse tray menu")
        self.open_action = QAction("Open Campaign Pulse", self)
        self.open_action.triggered.connect(self.openRequested)
        self.mute_action = QAction("Mute alerts", self, checkable=True)
        self.mute_action.toggled.connect(self.muteToggled)
        self.quit_action = QAction("Quit", self)
        self.quit_action.triggered.connect(self.quitRequested)
        self.menu.addAction(self.open_action)
        self.menu.addAction(self.mute_action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.icon: QSystemTrayIcon | None = None
        if self.available:
            self.icon = QSystemTrayIcon(icon, self)
            self.icon.setContextMenu(self.menu)
            self.icon.activated.connect(self._activated)
            self.icon.messageClicked.connect(self._message_clicked)
            self.icon.show()
        self._update_tooltip()

    @property
    def tooltip(self) -> str:
        if self.unread:
            plural = "s" if self.unread != 1 else ""
            return f"{self.title} — {self.unread} unread alert{plural}"
        return self.title

    def set_title(self, title: str) -> None:
        self.title = title
        self._update_tooltip()

    def set_muted(self, muted: bool) -> None:
        self.mute_action.setChecked(muted)

    def add_unread(self) -> None:
        self.unread += 1
        self._update_tooltip()

    def mark_read(self) -> None:
        if self.unread:
            self.unread = 0
            self._update_tooltip()

    def notify(self, flash: Flash) -> None:
        """A desktop notification; clicking it opens the campaign."""
        self.notified.append(flash)
        self._last_campaign = flash.campaign_id
        if self.icon is not None:
            heading = flash.campaign_title or "Campaign Pulse"
            self.icon.showMessage(
                heading, flash.text, QSystemTrayIcon.MessageIcon.Information, NOTIFICATION_MS
            )

    def hide(self) -> None:
        if self.icon is not None:
            self.icon.hide()

    def _update_tooltip(self) -> None:
        if self.icon is not None:
            self.icon.setToolTip(self.tooltip)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.openRequested.emit()

    def _message_clicked(self) -> None:
        if self._last_campaign is not None:
            self.campaignRequested.emit(self._last_campaign)
        else:
            self.openRequested.emit()

"""The status bar's connection state: what the live link is doing, with a retry countdown."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QWidget

from desktop.client.live import LinkState, LinkStatus
from desktop.ui.theme import text_color

CONNECTED_COLOR = "#1e7b34"
WAITING_COLOR = "#8a6d00"
DOWN_COLOR = "#b3261e"


def link_text(status: LinkStatus, seconds_to_retry: int) -> tuple[str, str]:
    """The label's text and colour for `status` (a hue, made readable by `ConnectionStatus`)."""
    if status.state is LinkState.CONNECTED:
        return "● Connected — live", CONNECTED_COLOR
    if status.state is LinkState.CONNECTING:
        return "● Connecting…", WAITING_COLOR
    if status.state is LinkState.RECONNECTING:
        if status.failures > 3:
            return f"● Offline — retrying in {seconds_to_retry} s ({status.reason})", DOWN_COLOR
        return f"● Reconnecting — reconnecting in {seconds_to_retry} s", WAITING_COLOR
    return f"● Offline{' — ' + status.reason if status.reason else ''}", DOWN_COLOR


def stale_text(as_of: str, status: LinkStatus, seconds_to_retry: int) -> str:
    """While the grid is a saved copy: when it was last live, and when the next try is."""
    if status.state is LinkState.RECONNECTING:
        return f"● Offline — data as of {as_of} (retrying in {seconds_to_retry} s)"
    return f"● Offline — data as of {as_of}"


class ConnectionStatus(QLabel):
    """A label that follows the link's state and counts down to the next retry."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Connecting…", parent)
        self.setObjectName("connectionStatus")
        self.setAccessibleName("Connection status")
        self.status = LinkStatus(LinkState.CONNECTING)
        self._hue = WAITING_COLOR
        self.stale_as_of: str | None = None  # set while the grid is a saved copy
        self._retry_at = 0.0
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self._show)

    def set_status(self, status: LinkStatus) -> None:
        self.status = status
        if status.retry_in is not None:
            self._retry_at = time.monotonic() + status.retry_in
            self._countdown.start()
        else:
            self._countdown.stop()
        self._show()

    def _show(self) -> None:
        seconds = max(0, round(self._retry_at - time.monotonic()))
        text, color = link_text(self.status, seconds)
        if self.stale_as_of is not None:
            text = stale_text(self.stale_as_of, self.status, seconds)
        self.setText(text)
        self._hue = color
        self.apply_palette()

    def apply_palette(self) -> None:
        """The state's colour, made readable on the application palette's window colour."""
        sheet = f"color: {text_color(QColor(self._hue)).name()};"
        if sheet != self.styleSheet():  # setting it again would announce another change
            self.setStyleSheet(sheet)

    def set_stale(self, as_of: str | None) -> None:
        """Say "Offline — data as of 09:12" until the grid is live again (None)."""
        self.stale_as_of = as_of
        self._show()

    def stop(self) -> None:
        self._countdown.stop()

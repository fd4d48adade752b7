"""The first-run offer, in a bar at the top of the window: desktop notifications (and a sound)
when a launch's results arrive while Campaign Pulse is in the background. It never blocks."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from desktop.client.alerts import AlertSettings
from desktop.ui.theme import tinted_panel

OFFER_TEXT = "Be told when a launch's offers are ready while Campaign Pulse is in the background?"
HUE = QColor("#1f6fc5")


class NotificationOffer(QFrame):
    """The offer: Turn On emits `answered(settings)` with the chosen alerts on, Not Now
    emits `answered(None)`; either way the bar hides."""

    answered = Signal(object)  # AlertSettings | None

    def __init__(
        self, settings: AlertSettings, *, tray_available: bool, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setObjectName("notificationOffer")
        self.setAccessibleName("Offer to turn on desktop notifications")
        self.text = QLabel(OFFER_TEXT)
        self.text.setWordWrap(True)
        self.notifications = QCheckBox("Desktop notifications")
        self.notifications.setAccessibleName("Turn on desktop notifications")
        self.notifications.setChecked(tray_available)
        if not tray_available:
            self.notifications.setEnabled(False)
            self.notifications.setToolTip("This desktop has no system tray to show them.")
        self.sound = QCheckBox("A sound")
        self.sound.setAccessibleName("Also play a sound")
        self.sound.setChecked(not tray_available)
        self.turn_on = QPushButton("Turn On")
        self.turn_on.setAccessibleName("Turn on these alerts")
        self.turn_on.setDefault(True)
        self.not_now = QPushButton("Not Now")
        self.not_now.setAccessibleName("Not now: do not turn on alerts")
        self.not_now.setToolTip("You can turn them on later in File → Alert Settings")
        self.turn_on.clicked.connect(self.accept)
        self.not_now.clicked.connect(self.decline)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.text, 1)
        for widget in (self.notifications, self.sound, self.turn_on, self.not_now):
            layout.addWidget(widget)
        self.apply_palette()

    def chosen_settings(self) -> AlertSettings:
        return replace(
            self.settings,
            desktop_notifications=self.settings.desktop_notifications
            or self.notifications.isChecked(),
            sound=self.settings.sound or self.sound.isChecked(),
            muted=False,
        )

    def accept(self) -> None:
        self.hide()
        self.answered.emit(self.chosen_settings())

    def decline(self) -> None:
        self.hide()
        self.answered.emit(None)

    def apply_palette(self) -> None:
        background, foreground, border = (c.name() for c in tinted_panel(HUE))
        sheet = (
            f"#notificationOffer {{ background: {background}; border: 1px solid {border};"
            f" border-radius: 4px; }} #notificationOffer QLabel, #notificationOffer QCheckBox"
            f" {{ color: {foreground}; }}"
        )
        if sheet != self.styleSheet():
            self.setStyleSheet(sheet)

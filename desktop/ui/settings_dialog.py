"""The alert settings dialog: desktop notifications, sound, which events, close to tray."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from desktop.client.alerts import AlertKind, AlertSettings
from desktop.ui.theme import muted_text_color


class AlertSettingsDialog(QDialog):
    """Edits an `AlertSettings`; `result_settings()` gives the edited copy."""

    def __init__(
        self,
        settings: AlertSettings,
        *,
        tray_available: bool,
        sound_problem: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Alert settings — Campaign Pulse")
        self._muted = settings.muted
        self.notifications = QCheckBox("Show desktop notifications when the window is not in front")
        self.notifications.setChecked(settings.desktop_notifications)
        self.sound = QCheckBox("Play a sound")
        self.sound.setChecked(settings.sound)
        self.close_to_tray = QCheckBox("Closing the window keeps Campaign Pulse in the tray")
        self.close_to_tray.setChecked(settings.close_to_tray)
        if not tray_available:
            for box in (self.notifications, self.close_to_tray):
                box.setEnabled(False)
                box.setToolTip("This desktop has no system tray.")
        notes = []
        if not tray_available:
            notes.append("This desktop has no system tray: notifications are shown in the window.")
        if sound_problem:
            notes.append(sound_problem)
        self.kind_boxes: dict[AlertKind, QCheckBox] = {}
        kinds = QGroupBox("Alert me about")
        kinds.setAccessibleName("Alert me about")
        kinds_layout = QVBoxLayout(kinds)
        for kind in AlertKind:
            box = QCheckBox(kind.label)
            box.setChecked(kind in settings.kinds)
            self.kind_boxes[kind] = box
            kinds_layout.addWidget(box)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.notifications)
        layout.addWidget(self.sound)
        layout.addWidget(kinds)
        layout.addWidget(self.close_to_tray)
        for note in notes:
            label = QLabel(note)
            label.setWordWrap(True)
            label.setStyleSheet(f"color: {muted_text_color().name()};")
            layout.addWidget(label)
        layout.addWidget(buttons)

    def result_settings(self) -> AlertSettings:
        return AlertSettings(
            desktop_notifications=self.notifications.isChecked(),
            sound=self.sound.isChecked(),
            kinds=frozenset(kind for kind, box in self.kind_boxes.items() if box.isChecked()),
            close_to_tray=self.close_to_tray.isChecked(),
            muted=self._muted,
        )

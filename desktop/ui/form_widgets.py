"""Small pieces the campaign dialogs share: an error line under a field, a money field, and a
red that reads on the light and the dark palette alike."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import QDateTime, QEvent, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QDateTimeEdit, QLabel, QLineEdit, QWidget

LIGHT_ERROR = "#b3261e"  # on light backgrounds
DARK_ERROR = "#ff8a80"  # on dark backgrounds


def error_color(widget: QWidget) -> str:
    """A red with enough contrast on `widget`'s window colour."""
    window = widget.palette().color(QPalette.ColorRole.Window)
    return DARK_ERROR if window.lightness() < 128 else LIGHT_ERROR


class FieldMessage(QLabel):
    """What is wrong with a field, in a palette-aware red; hidden while nothing is."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setAccessibleName(name)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setVisible(False)
        self._error = True
        self._style()

    def show_error(self, text: str) -> None:
        self._error = True
        self._set(text)

    def show_note(self, text: str) -> None:
        """A neutral line (progress, a hint) in the palette's own text colour."""
        self._error = False
        self._set(text)

    def clear_message(self) -> None:
        self._set("")

    def _set(self, text: str) -> None:
        self.setText(text)
        self.setVisible(bool(text))
        self._style()

    def _style(self) -> None:
        style = f"color: {error_color(self)};" if self._error else ""
        if style != self.styleSheet():  # a new style sheet is a palette change: no loop
            self.setStyleSheet(style)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._style()


class MoneyEdit(QLineEdit):
    """An amount in the marketer's currency, with cents (`12.50`)."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName(name)
        self.setPlaceholderText("0.00")
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.setInputMethodHints(Qt.InputMethodHint.ImhFormattedNumbersOnly)
        self.setMaxLength(24)


def date_time_edit(name: str) -> QDateTimeEdit:
    edit = QDateTimeEdit()
    edit.setAccessibleName(name)
    edit.setCalendarPopup(True)
    edit.setDisplayFormat("yyyy-MM-dd HH:mm")
    return edit


def moment_of(edit: QDateTimeEdit) -> datetime:
    """The edit's time as an aware UTC datetime (to the minute it shows)."""
    return datetime.fromtimestamp(edit.dateTime().toSecsSinceEpoch(), UTC)


def set_moment(edit: QDateTimeEdit, moment: datetime) -> None:
    edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(moment.timestamp())))

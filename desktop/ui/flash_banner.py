"""The banner at the top of the window that shows the flash queue, one message at a time.

Each flash stays for its reading time; hovering keeps it open; a count says how many wait.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from desktop.client.flashes import Flash, FlashLevel, FlashQueue
from desktop.ui.theme import tinted_panel

MIN_AFTER_HOVER_MS = 2000
HUES = {  # tinted into the palette: light on a light theme, dark on a dark one
    FlashLevel.INFO: QColor("#1f6fc5"),
    FlashLevel.SUCCESS: QColor("#1e8c3a"),
    FlashLevel.ERROR: QColor("#c5221f"),
}


class FlashBanner(QFrame):
    """Shows `queue.current`; advances on its timer, on Next, or on close."""

    campaignClicked = Signal(int)

    def __init__(self, queue: FlashQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.setObjectName("flashBanner")
        self.setAccessibleName("Messages")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAttribute(Qt.WidgetAttribute.WA_Hover, True)
        self.title = QLabel()
        self.title.setObjectName("flashTitle")
        self.message = QLabel()
        self.message.setObjectName("flashText")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.counter = QLabel()
        self.counter.setObjectName("flashCount")
        self.next_button = QToolButton()
        self.next_button.setText("Next ›")
        self.next_button.setToolTip("Show the next message")
        self.next_button.setAccessibleName("Next message")
        self.next_button.clicked.connect(self.show_next)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss all messages (Esc)")
        self.close_button.setAccessibleName("Dismiss all messages")
        self.close_button.clicked.connect(self.queue.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.title)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.counter)
        layout.addWidget(self.next_button)
        layout.addWidget(self.close_button)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.show_next)
        self._hovered = False
        self._shown: Flash | None = None
        queue.add_listener(self._refresh)
        self._refresh()

    @property
    def text(self) -> str:
        """The message on screen (empty when hidden)."""
        return "" if self.isHidden() else self.message.text()

    def show_next(self) -> None:
        self.queue.advance()

    def remaining_ms(self) -> int:
        return self._timer.remainingTime() if self._timer.isActive() else -1

    def _refresh(self) -> None:
        flash = self.queue.current
        if flash is None:
            self._timer.stop()
            self._shown = None
            self.hide()
            return
        text = flash.text + (f"  (×{flash.repeats})" if flash.repeats > 1 else "")
        self.message.setText(text)
        self.title.setText(
            f"<b>{_escape(flash.campaign_title)}</b>" if flash.campaign_title else ""
        )
        self.title.setVisible(bool(flash.campaign_title))
        waiting = self.queue.waiting
        extra = f" ({self.queue.skipped} older skipped)" if self.queue.skipped else ""
        self.counter.setText(f"+{waiting} more{extra}" if waiting else "")
        self.counter.setVisible(bool(waiting))
        self.next_button.setVisible(bool(waiting))
        self.apply_palette()
        self.setAccessibleDescription(text)
        self.show()
        if flash is not self._shown:  # a new flash: give it its full reading time
            self._shown = flash
            if not self._hovered:
                self._timer.start(int(flash.display_seconds * 1000))

    def apply_palette(self) -> None:
        """Colours of the current flash's level, made from the application's palette."""
        flash = self.queue.current
        if flash is None:
            return
        background, foreground, border = (c.name() for c in tinted_panel(HUES[flash.level]))
        sheet = (
            f"#flashBanner {{ background: {background}; border: 1px solid {border};"
            f" border-radius: 4px; }} #flashBanner QLabel, #flashBanner QToolButton"
            f" {{ color: {foreground}; }}"
        )
        if sheet != self.styleSheet():  # setting it again would announce another change
            self.setStyleSheet(sheet)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.HoverEnter:
            self._hovered = True
            self._timer.stop()
        elif event.type() == QEvent.Type.HoverLeave:
            self._hovered = False
            if self.queue.current is not None:
                self._timer.start(MIN_AFTER_HOVER_MS)
        return super().event(event)

    def mousePressEvent(self, event: object) -> None:
        flash = self.queue.current
        if flash is not None and flash.campaign_id is not None:
            self.campaignClicked.emit(flash.campaign_id)


def _escape(text: str | None) -> str:
    return (text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

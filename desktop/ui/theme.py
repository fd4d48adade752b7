"""Colours that read well in light and dark themes, and the View → Theme choice.

Every colour the app adds (banner, status, highlights, errors) is made from the current
palette and checked for WCAG contrast, so a dark system theme works as well as a light one.
`apply_theme` switches between the system's look and a light or dark Fusion palette.
"""

from __future__ import annotations

from enum import StrEnum

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QMenu, QStyleFactory, QWidget

MIN_CONTRAST = 4.5  # WCAG AA for normal text
ERROR_HUE = QColor("#b3261e")
CHANGED_HUE = QColor(255, 200, 60)  # amber: a cell that just changed


class Theme(StrEnum):
    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"

    @property
    def label(self) -> str:
        return {"system": "&System", "light": "&Light", "dark": "&Dark"}[self.value]


# ---- colour arithmetic ---------------------------------------------------------------------


def luminance(color: QColor) -> float:
    """WCAG relative luminance, 0 (black) to 1 (white)."""

    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.03928 else ((value + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(color.redF())
        + 0.7152 * channel(color.greenF())
        + 0.0722 * channel(color.blueF())
    )


def contrast_ratio(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two opaque colours, 1 to 21."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def mix(a: QColor, b: QColor, amount: float) -> QColor:
    """`a` moved `amount` (0..1) of the way to `b`."""
    return QColor.fromRgbF(
        a.redF() + (b.redF() - a.redF()) * amount,
        a.greenF() + (b.greenF() - a.greenF()) * amount,
        a.blueF() + (b.blueF() - a.blueF()) * amount,
    )


def readable(color: QColor, background: QColor, toward: QColor | None = None) -> QColor:
    """`color`, blended toward `toward` (black or white) just enough to read on `background`."""
    if toward is None:
        toward = QColor("white") if luminance(background) < 0.18 else QColor("black")
    amount = 0.0
    result = QColor(color)
    while contrast_ratio(result, background) < MIN_CONTRAST and amount < 1.0:
        amount = min(1.0, amount + 0.05)
        result = mix(color, toward, amount)
    return result


def is_dark(palette: QPalette | None = None) -> bool:
    """Whether the palette's windows are dark (light text on a dark background)."""
    palette = palette or QGuiApplication.palette()
    return luminance(palette.color(QPalette.ColorRole.Window)) < 0.18


def text_color(hue: QColor, palette: QPalette | None = None) -> QColor:
    """`hue` made readable as text on the palette's window background."""
    palette = palette or QGuiApplication.palette()
    background = palette.color(QPalette.ColorRole.Window)
    return readable(hue, background, palette.color(QPalette.ColorRole.WindowText))


def error_color(palette: QPalette | None = None) -> QColor:
    return text_color(ERROR_HUE, palette)


def muted_text_color(palette: QPalette | None = None) -> QColor:
    """Secondary text (notes, hints): dimmer than the window's text, still legible."""
    palette = palette or QGuiApplication.palette()
    text = palette.color(QPalette.ColorRole.WindowText)
    return text_color(mix(text, palette.color(QPalette.ColorRole.Window), 0.45), palette)


def tinted_panel(hue: QColor, palette: QPalette | None = None) -> tuple[QColor, QColor, QColor]:
    """(background, text, border) of a panel in `hue` that fits the palette."""
    palette = palette or QGuiApplication.palette()
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    dark = is_dark(palette)
    background = mix(base, hue, 0.28 if dark else 0.12)
    foreground = readable(mix(text, hue, 0.35), background, text)
    border = mix(base, hue, 0.6 if dark else 0.45)
    return background, foreground, border


def changed_cell_color(palette: QPalette | None = None) -> QColor:
    """The background of a grid cell that just changed: amber, with its text still legible."""
    palette = palette or QGuiApplication.palette()
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    amount = 0.6
    color = mix(base, CHANGED_HUE, amount)
    while contrast_ratio(text, color) < MIN_CONTRAST and amount > 0.1:
        amount -= 0.05
        color = mix(base, CHANGED_HUE, amount)
    return color


def palette_changed(event: QEvent) -> bool:
    """Whether `event` tells a window that the colours changed."""
    return event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange)


def refresh_colors(window: QWidget) -> None:
    """Have every widget of `window` that makes colours of its own (`apply_palette()`) make
    them again from the new palette. Windows call it on a palette change: a widget with a
    style sheet is not told reliably itself."""
    for widget in window.findChildren(QWidget):
        apply_palette = getattr(widget, "apply_palette", None)
        if callable(apply_palette):
            apply_palette()


# ---- the theme choice ------------------------------------------------------------------------


def dark_palette() -> QPalette:
    """A Fusion dark palette."""
    window, base, text = QColor(45, 45, 48), QColor(32, 32, 34), QColor(235, 235, 235)
    disabled = QColor(128, 128, 128)
    palette = QPalette()
    roles = QPalette.ColorRole
    for role, color in (
        (roles.Window, window),
        (roles.WindowText, text),
        (roles.Base, base),
        (roles.AlternateBase, QColor(42, 42, 45)),
        (roles.ToolTipBase, QColor(60, 60, 64)),
        (roles.ToolTipText, text),
        (roles.PlaceholderText, QColor(150, 150, 150)),
        (roles.Text, text),
        (roles.Button, QColor(55, 55, 58)),
        (roles.ButtonText, text),
        (roles.BrightText, QColor(255, 110, 110)),
        (roles.Light, QColor(75, 75, 78)),
        (roles.Midlight, QColor(62, 62, 65)),
        (roles.Mid, QColor(40, 40, 42)),
        (roles.Dark, QColor(25, 25, 27)),
        (roles.Shadow, QColor(10, 10, 10)),
        (roles.Highlight, QColor(42, 130, 218)),
        (roles.HighlightedText, QColor(255, 255, 255)),
        (roles.Link, QColor(110, 170, 255)),
        (roles.LinkVisited, QColor(180, 140, 255)),
    ):
        palette.setColor(role, color)
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    palette.setColor(QPalette.ColorGroup.Disabled, roles.Highlight, QColor(70, 70, 70))
    return palette


_system_style: dict[int, str] = {}  # id(app) -> the style the app started with


def apply_theme(theme: Theme | str, app: QApplication | None = None) -> None:
    """Follow the system's theme, or use a light or dark Fusion look."""
    app = app or _application()
    theme = Theme(theme) if theme in set(Theme) else Theme.SYSTEM
    _system_style.setdefault(id(app), app.style().name())
    hints = QGuiApplication.styleHints()
    if theme is Theme.SYSTEM:
        if hasattr(hints, "unsetColorScheme"):  # Qt 6.8+
            hints.unsetColorScheme()
        app.setStyle(_system_style[id(app)])
        app.setPalette(QPalette())  # the platform's palette, following its changes again
        return
    if hasattr(hints, "setColorScheme"):  # native parts (title bars, dialogs) follow too
        hints.setColorScheme(Qt.ColorScheme.Dark if theme is Theme.DARK else Qt.ColorScheme.Light)
    app.setStyle("Fusion")
    fusion = QStyleFactory.create("Fusion")
    app.setPalette(dark_palette() if theme is Theme.DARK else fusion.standardPalette())


def _application() -> QApplication:
    app = QApplication.instance()
    assert isinstance(app, QApplication), "create the QApplication first"
    return app


class ThemeMenu(QObject):
    """View → Theme: System, Light or Dark; `chosen(theme)` after applying it."""

    chosen = Signal(str)

    def __init__(self, current: Theme | str, parent: QWidget) -> None:
        super().__init__(parent)
        self.menu = QMenu("&Theme", parent)
        self.group = QActionGroup(self)
        self.actions: dict[Theme, QAction] = {}
        for theme in Theme:
            action = QAction(theme.label, self, checkable=True)
            action.setChecked(theme == current)
            action.triggered.connect(lambda _checked=False, t=theme: self.choose(t))
            self.group.addAction(action)
            self.menu.addAction(action)
            self.actions[theme] = action

    def choose(self, theme: Theme) -> None:
        self.actions[theme].setChecked(True)
        apply_theme(theme)
        self.chosen.emit(theme.value)

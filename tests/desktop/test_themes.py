"""Light and dark themes both read well, and the window follows a theme change while open."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCharts import QChart
from PySide6.QtGui import QColor, QPalette

from desktop.client.flashes import Flash, FlashLevel
from desktop.client.live import LinkState, LinkStatus
from desktop.ui.theme import Theme, apply_theme, contrast_ratio, luminance

from .conftest import make_campaign

STATUSES = (
    LinkStatus(LinkState.CONNECTED),
    LinkStatus(LinkState.CONNECTING),
    LinkStatus(LinkState.RECONNECTING, 5.0, 1),
    LinkStatus(LinkState.RECONNECTING, 5.0, 5, "server refused the connection"),
    LinkStatus(LinkState.OFFLINE, reason="closed"),
)


@pytest.fixture
def themed(qapp: Any) -> Iterator[None]:
    yield
    apply_theme(Theme.SYSTEM)  # the application's palette is shared by every test


def banner_background(window: Any) -> QColor:
    banner = window.banner
    return banner.grab().toImage().pixelColor(3, banner.height() // 2)


def test_banner_status_highlight_and_chart_follow_light_and_dark_themes(
    main_window: Any, qtbot: Any, themed: None
) -> None:
    window = main_window
    window.bridge.on_campaigns([make_campaign(1, "Spring")])
    qtbot.waitUntil(lambda: window.loaded)
    window.dashboard.flashes.push(Flash("Offers created", FlashLevel.SUCCESS, campaign_id=1))
    detail = window.open_campaign(1)
    assert detail is not None
    for theme, chart_theme in (
        (Theme.DARK, QChart.ChartTheme.ChartThemeDark),
        (Theme.LIGHT, QChart.ChartTheme.ChartThemeLight),
    ):
        window.theme_menu.actions[theme].trigger()  # View → Theme, with the window open
        qtbot.wait(10)
        dark = theme is Theme.DARK
        background = banner_background(window)
        assert (luminance(background) < 0.1) == dark, background.name()
        text = window.banner.message.palette().color(QPalette.ColorRole.WindowText)
        assert contrast_ratio(text, background) >= 4.5

        label = window.connection_label
        under = window.statusBar().palette().color(QPalette.ColorRole.Window)
        for status in STATUSES:
            label.set_status(status)
            label.ensurePolished()
            color = label.palette().color(QPalette.ColorRole.WindowText)
            ratio = contrast_ratio(color, under)
            assert ratio >= 4.5, f"{theme}: {label.text()} {color.name()} on {under.name()}"

        cell_text = window.table.palette().color(QPalette.ColorRole.Text)
        assert contrast_ratio(cell_text, window.model.highlight) >= 4.5
        assert detail.chart.chart().theme() == chart_theme
    assert window.preferences.theme == "light"
    detail.close()

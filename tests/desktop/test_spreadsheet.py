"""The grid into spreadsheets: Export CSV, Ctrl+C, the column chooser and its saved layout."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QStandardItemModel
from PySide6.QtWidgets import QApplication, QFileDialog, QHeaderView

from desktop.client.models import UserSession
from desktop.ui.app import DesktopApp
from desktop.ui.campaign_model import (
    COL_BALANCE,
    COL_BANNER_VIEWS,
    COL_PENDING_OFFERS,
    COL_SPEND_TO_DATE,
    COL_STATE,
    COL_TARGET,
    COL_TITLE,
    COLUMNS,
    RAW_ROLE,
)
from desktop.ui.columns import FIELDS, LAYOUT_VERSION
from desktop.ui.main_window import MainWindow
from desktop.ui.preferences import Preferences, SavedColumns
from desktop.ui.sounds import SilentPlayer
from tests.backend import ALICE, BOB, DEMO_PASSWORD, LiveBackend

from .conftest import make_campaign

ASC, DESC = Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder
CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def open_window(qtbot: Any, offline_bridge: Any, preferences: Any) -> Iterator[Any]:
    """Open more main windows on the same settings (for the signed-in user of the bridge)."""
    windows: list[MainWindow] = []

    def open_window() -> MainWindow:
        window = MainWindow(offline_bridge, preferences, sound_player=SilentPlayer("test"))
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield open_window
    for window in windows:
        window.shutdown()


def load(window: Any, qtbot: Any, campaigns: list[Any]) -> None:
    window.bridge.on_campaigns(campaigns)
    qtbot.waitUntil(lambda: window.loaded and len(window.store) == len(campaigns))


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def shown_columns(window: Any) -> list[int]:
    header = window.table.horizontalHeader()
    logical = [header.logicalIndex(visual) for visual in range(header.count())]
    return [n for n in logical if not header.isSectionHidden(n)]


def assert_matches_view(window: Any, rows: list[list[str]]) -> None:
    """The rows are the grid's rows as shown: same columns, rows, order, and raw numbers."""
    columns, proxy = shown_columns(window), window.proxy
    assert rows[0] == [COLUMNS[n].header for n in columns]
    assert len(rows) - 1 == proxy.rowCount()
    for row_number, row in enumerate(rows[1:]):
        for cell, column in zip(row, columns, strict=True):
            index = proxy.index(row_number, column)
            if COLUMNS[column].numeric:
                assert Decimal(cell) == Decimal(str(index.data(RAW_ROLE))), (row, column)
            else:
                assert cell == index.data()


def layout(window: Any) -> tuple[Any, ...]:
    header = window.table.horizontalHeader()
    return (
        [header.logicalIndex(visual) for visual in range(header.count())],
        {n for n in range(header.count()) if header.isSectionHidden(n)},
        header.sectionSize(COL_TARGET),
        header.sortIndicatorSection(),
        header.sortIndicatorOrder(),
    )


def test_export_writes_the_filtered_sorted_rows_and_the_columns_shown(
    main_window: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = main_window
    load(
        window,
        qtbot,
        [
            make_campaign(1, "Zürich été 日本", spend=1234.5, pending=1500),
            make_campaign(2, 'Autumn, "big"', spend=99.99, pending=7),
            make_campaign(3, "Archived one", state="archived", spend=5000.0),
            make_campaign(4, "Winter", spend=0.5, pending=2_000_000),
        ],
    )
    window.state_filter.setCurrentIndex(1)  # Active
    window.table.sortByColumn(COL_SPEND_TO_DATE, DESC)
    chooser = window.columns.choose()  # View → Columns…: untick Target, move Spend to the top
    items = [chooser.list.item(row) for row in range(chooser.list.count())]
    items[COL_TARGET].setCheckState(Qt.CheckState.Unchecked)
    chooser.list.setCurrentRow(COL_SPEND_TO_DATE)
    for _ in range(COL_SPEND_TO_DATE):
        chooser.move_current(-1)
    chooser.accept()
    asked: list[str] = []

    def save_dialog(_parent: Any, _caption: str, default: str, filters: str) -> tuple[str, str]:
        asked.append(default)
        return str(tmp_path / "march"), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_dialog)
    window.spreadsheet.export.trigger()

    assert Path(asked[0]).name == f"campaigns-{dt.date.today().isoformat()}.csv"
    rows = read_csv(tmp_path / "march.csv")
    assert_matches_view(window, rows)
    assert rows[0][:3] == ["Spend to date", "Campaign", "State"]
    assert "Target" not in rows[0]
    pending = rows[0].index("Pending offers")
    assert [(r[0], r[1], r[pending]) for r in rows[1:]] == [
        ("1234.50", "Zürich été 日本", "1500"),
        ("99.99", 'Autumn, "big"', "7"),
        ("0.50", "Winter", "2000000"),
    ]
    assert window.statusBar().currentMessage().startswith("Exported 3 campaigns to ")


def test_ctrl_c_copies_the_selected_rows_and_enter_opens_one(main_window: Any, qtbot: Any) -> None:
    window, table = main_window, main_window.table
    load(
        window,
        qtbot,
        [
            make_campaign(1, "Alpha", spend=1234.5, pending=1500),
            make_campaign(2, "Beta"),
            make_campaign(3, "Gamma", state="not_launched", spend=0.25),
        ],
    )

    def click(row: int, modifier: Any = Qt.KeyboardModifier.NoModifier) -> None:
        center = table.visualRect(window.proxy.index(row, COL_TITLE)).center()
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, modifier, center)

    click(0)
    click(2, CTRL)
    assert [c.id for c in window.grid.selected_campaigns()] == [1, 3]
    assert not window.details_action.isEnabled()  # actions on one campaign need one row
    assert not window.launch_action.isEnabled()
    QApplication.clipboard().setText("before")
    qtbot.keyClick(table, Qt.Key.Key_C, CTRL)
    assert QApplication.clipboard().text().splitlines() == [
        "\t".join(column.header for column in COLUMNS),
        "Alpha\tActive\tOutdoor fans\tPopulated\t0\t1500\t0\t0.00\t1234.50\t0.00\t0\t0\t0",
        "Gamma\tNot launched\tOutdoor fans\tPopulated\t0\t0\t0\t0.00\t0.25\t0.00\t0\t0\t0",
    ]
    qtbot.keyClick(table, Qt.Key.Key_A, CTRL)
    qtbot.keyClick(table, Qt.Key.Key_C, CTRL)
    assert len(QApplication.clipboard().text().splitlines()) == 4

    click(1)
    assert window.details_action.isEnabled()
    qtbot.keyClick(table, Qt.Key.Key_Return)
    assert list(window.details) == [2]


def test_no_two_actions_of_the_window_share_a_shortcut(main_window: Any) -> None:
    owners: dict[str, list[str]] = {}
    for action in main_window.findChildren(QAction):
        if action.shortcutContext() != Qt.ShortcutContext.WidgetShortcut:
            for key in action.shortcuts():
                owners.setdefault(key.toString(), []).append(action.text())
    assert {key: texts for key, texts in owners.items() if len(texts) > 1} == {}
    assert "Ctrl+Shift+E" in owners and owners["Ctrl+C"] == ["&Copy"]


def test_a_failed_export_shows_why_and_leaves_no_file(
    main_window: Any, qtbot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(main_window, qtbot, [make_campaign(1, "Spring")])

    def read_only(_src: object, dst: object) -> None:  # as a read-only folder refuses it
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", read_only)
    assert not main_window.spreadsheet.write(tmp_path / "campaigns.csv")
    box = main_window.spreadsheet.error_box
    assert box is not None and box.isVisible()
    assert "may not write campaigns.csv" in box.text()
    assert list(tmp_path.iterdir()) == []


def test_column_layout_is_kept_per_account(
    main_window: Any, open_window: Any, qtbot: Any, offline_bridge: Any, preferences: Preferences
) -> None:
    window, header = main_window, main_window.table.horizontalHeader()
    assert [a.text() for a in window.columns.header_menu().actions()][:2] == ["Campaign", "State"]
    window.columns.header_menu().actions()[COL_STATE].trigger()  # untick State
    header.moveSection(header.visualIndex(COL_BALANCE), 1)
    header.resizeSection(COL_TARGET, 321)
    window.table.sortByColumn(COL_SPEND_TO_DATE, DESC)
    chosen = layout(window)
    assert chosen[1] == {COL_STATE}
    url = offline_bridge.server_url
    qtbot.waitUntil(lambda: preferences.column_layout(url, ALICE) is not None)  # on change
    header.resizeSection(COL_TARGET, 322)
    window.close()  # and on close

    again = open_window()
    load(again, qtbot, [make_campaign(1, "A long title " * 5, pending=10**9)])
    assert layout(again) == (*chosen[:2], 322, *chosen[3:])

    offline_bridge.session.user = UserSession("token", 2, BOB, 1, "Acme Outdoor")
    other = open_window()
    assert layout(other)[:2] == (list(range(len(COLUMNS))), set())
    assert layout(other)[3:] == (COL_TITLE, ASC)

    again.columns.reset_action.trigger()
    assert layout(again)[:2] == (list(range(len(COLUMNS))), set())
    assert preferences.column_layout(url, ALICE) is None


def test_a_layout_saved_with_other_columns_applies_by_name(
    open_window: Any, offline_bridge: Any, preferences: Preferences
) -> None:
    # An older release without the Balance column: its logical indexes after it differ.
    old_fields = tuple(f for f in FIELDS if f != "balance")
    old = QHeaderView(Qt.Orientation.Horizontal)
    old.setModel(QStandardItemModel(0, len(old_fields), old))
    old.moveSection(old.visualIndex(old_fields.index("spend_to_date")), 0)
    old.hideSection(old_fields.index("state"))
    old.resizeSection(old_fields.index("target_title"), 250)
    old.setSortIndicator(old_fields.index("banner_views"), DESC)
    saved = SavedColumns(LAYOUT_VERSION, old_fields, old.saveState())
    preferences.save_column_layout(offline_bridge.server_url, ALICE, saved)

    window = open_window()
    header = window.table.horizontalHeader()
    assert header.logicalIndex(0) == COL_SPEND_TO_DATE
    assert header.isSectionHidden(COL_STATE)
    assert header.sectionSize(COL_TARGET) == 250
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (COL_BANNER_VIEWS, DESC)
    assert header.visualIndex(COL_BALANCE) == len(COLUMNS) - 1  # the new column, at the end
    assert not header.isSectionHidden(COL_BALANCE)
    assert header.visualIndex(COL_PENDING_OFFERS) < header.visualIndex(COL_BALANCE)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the desktop is the point
def test_export_of_a_real_account_matches_its_grid(
    live_backend: LiveBackend, qtbot: Any, tmp_path: Path
) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    app = DesktopApp(Preferences(settings), quit_app_when_done=False)
    app.start(live_backend.url, ALICE, DEMO_PASSWORD)
    try:
        qtbot.waitUntil(lambda: app.window is not None and app.window.loaded, timeout=20_000)
        window = app.window
        assert window is not None
        window.table.sortByColumn(COL_SPEND_TO_DATE, DESC)
        assert window.spreadsheet.write(tmp_path / "campaigns.csv")
        rows = read_csv(tmp_path / "campaigns.csv")
        assert len(rows) > 2
        assert_matches_view(window, rows)
        spend = rows[0].index("Spend to date")
        assert all(len(row[spend].partition(".")[2]) == 2 for row in rows[1:])
    finally:
        app.quit()
        if app.window is not None:
            app.window.deleteLater()

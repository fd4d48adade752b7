"""The grid's column layout: which columns show, in what order, how wide, and the sort.

`ColumnLayout` keeps it per account (server and email): `QHeaderView.saveState()` with the
names of the columns it was saved with, a moment after each change and on close. It is read
back in a scratch header and applied by column name, so a layout saved by a release with other
columns still applies to the columns both know (a new column shows at the right end), and
nothing else that `restoreState` would bring back (resize modes) outlives a release. View →
Columns… (`ColumnChooser`) and the header's context menu show, hide and reorder columns;
View → Reset Columns brings back the defaults.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QPoint, Qt, QTimer
from PySide6.QtGui import QAction, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.campaign_model import COL_TITLE, COLUMNS
from desktop.ui.grid import CampaignGrid
from desktop.ui.preferences import Preferences, SavedColumns

LAYOUT_VERSION = 1  # raise when what is saved changes meaning; older layouts are then ignored
FIELDS = tuple(column.field for column in COLUMNS)
SAVE_DELAY_MS = 500
_LOGICAL_ROLE = int(Qt.ItemDataRole.UserRole)


class ColumnLayout(QObject):
    """Column order, widths, hidden columns and sort of one account's grid, remembered."""

    def __init__(
        self,
        grid: CampaignGrid,
        preferences: Preferences,
        server_url: str,
        email: str,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.grid = grid
        self.header = grid.table.horizontalHeader()
        self.preferences = preferences
        self.account = (server_url, email)
        self.dialog: ColumnChooser | None = None
        self._dirty = False
        self._quiet = False  # True while this class itself rearranges the header
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save)

        self.choose_action = QAction("&Columns…", self)
        self.choose_action.setStatusTip("Choose which columns the grid shows, and their order")
        self.choose_action.triggered.connect(self.choose)
        self.reset_action = QAction("&Reset Columns", self)
        self.reset_action.setStatusTip("Show every column in its first order, width and sort")
        self.reset_action.triggered.connect(self.reset)

        header = self.header
        header.setSectionsMovable(True)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._header_menu)
        self.restore()
        header.sectionMoved.connect(self._changed)
        header.sectionResized.connect(self._changed)
        header.sortIndicatorChanged.connect(self._changed)

    # ---- remembering --------------------------------------------------------------------

    def restore(self) -> bool:
        """Apply the account's saved layout, if any; True when one was applied."""
        saved = self.preferences.column_layout(*self.account)
        if saved is None or saved.version != LAYOUT_VERSION:
            return False
        self._quiet = True
        try:
            restored = self._restore_by_name(saved)
            self.header.showSection(COL_TITLE)
            self.grid.table.sortByColumn(
                self.header.sortIndicatorSection(), self.header.sortIndicatorOrder()
            )
        finally:
            self._quiet = False
        if restored:
            self.grid.size_columns_on_load = False
        return restored

    def _restore_by_name(self, saved: SavedColumns) -> bool:
        """Read the saved state in a scratch header of its own columns; apply it by name."""
        old = QHeaderView(Qt.Orientation.Horizontal)
        old.setModel(QStandardItemModel(0, len(saved.fields), old))
        if not old.restoreState(saved.header) or old.count() != len(saved.fields):
            return False
        now = {field: logical for logical, field in enumerate(FIELDS)}
        known = [
            (now[saved.fields[logical]], logical)
            for logical in (old.logicalIndex(visual) for visual in range(old.count()))
            if saved.fields[logical] in now
        ]
        for position, (logical, old_logical) in enumerate(known):
            self.header.moveSection(self.header.visualIndex(logical), position)
            self.header.setSectionHidden(logical, old.isSectionHidden(old_logical))
            if not old.isSectionHidden(old_logical):
                self.header.resizeSection(logical, old.sectionSize(old_logical))
        sort = old.sortIndicatorSection()
        if 0 <= sort < len(saved.fields) and saved.fields[sort] in now:
            self.header.setSortIndicator(now[saved.fields[sort]], old.sortIndicatorOrder())
        return True

    def _changed(self, *_args: object) -> None:
        if not self._quiet:
            self._dirty = True
            self._save_timer.start()

    def save(self) -> None:
        """Keep the layout now if it changed since it was restored or last saved."""
        self._save_timer.stop()
        if not self._dirty:
            return
        self._dirty = False
        layout = SavedColumns(LAYOUT_VERSION, FIELDS, self.header.saveState())
        self.preferences.save_column_layout(*self.account, layout)
        self.preferences.sync()

    def reset(self) -> None:
        """Every column shown, in model order, sized to its contents, sorted by title."""
        self._quiet = True
        try:
            for logical in range(self.header.count()):
                self.header.showSection(logical)
                self.header.moveSection(self.header.visualIndex(logical), logical)
            self.grid.table.sortByColumn(COL_TITLE, Qt.SortOrder.AscendingOrder)
            self.grid.size_columns()
        finally:
            self._quiet = False
        self._save_timer.stop()
        self._dirty = False
        self.grid.size_columns_on_load = True
        self.preferences.save_column_layout(*self.account, None)

    # ---- choosing -----------------------------------------------------------------------

    def visual_order(self) -> list[int]:
        """The logical columns from left to right, hidden ones included."""
        return [self.header.logicalIndex(visual) for visual in range(self.header.count())]

    def set_visible(self, logical: int, visible: bool) -> None:
        """Show or hide a column; the campaign title always stays."""
        if logical == COL_TITLE or self.header.isSectionHidden(logical) != visible:
            return
        self.header.setSectionHidden(logical, not visible)
        if visible and self.header.sectionSize(logical) < self.header.minimumSectionSize():
            self.grid.table.resizeColumnToContents(logical)
        self._changed()

    def apply(self, order: list[int], hidden: set[int]) -> None:
        """Put the columns in `order` (logical indexes, left to right) and hide `hidden`."""
        for position, logical in enumerate(order):
            self.header.moveSection(self.header.visualIndex(logical), position)
        for logical in range(self.header.count()):
            self.set_visible(logical, logical not in hidden)
        self._changed()

    def header_menu(self) -> QMenu:
        """A tick per column, then Columns… and Reset Columns."""
        menu = QMenu(self.grid)
        menu.setAccessibleName("Columns shown")
        for logical in self.visual_order():
            action = menu.addAction(COLUMNS[logical].header)
            action.setCheckable(True)
            action.setChecked(not self.header.isSectionHidden(logical))
            action.setEnabled(logical != COL_TITLE)
            action.toggled.connect(lambda on, n=logical: self.set_visible(n, on))
        menu.addSeparator()
        menu.addAction(self.choose_action)
        menu.addAction(self.reset_action)
        return menu

    def _header_menu(self, point: QPoint) -> None:
        menu = self.header_menu()
        menu.aboutToHide.connect(menu.deleteLater)
        menu.popup(self.header.mapToGlobal(point))

    def choose(self) -> ColumnChooser:
        """Open View → Columns… (window-modal); OK applies the choice."""
        hidden = {n for n in range(self.header.count()) if self.header.isSectionHidden(n)}
        dialog = ColumnChooser(self.visual_order(), hidden, self.grid.window())
        dialog.accepted.connect(lambda: self.apply(*dialog.chosen()))
        dialog.finished.connect(dialog.deleteLater)
        self.dialog = dialog
        dialog.open()
        return dialog


class ColumnChooser(QDialog):
    """Tick the columns to show; drag them (or Move Up / Move Down) to order them."""

    def __init__(self, order: list[int], hidden: set[int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Columns")
        self.setAccessibleName("Choose columns")
        self.list = QListWidget()
        self.list.setAccessibleName("Columns, in the grid's order")
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        for logical in order:
            item = QListWidgetItem(COLUMNS[logical].header)
            item.setData(_LOGICAL_ROLE, logical)
            checked = logical == COL_TITLE or logical not in hidden
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
            if logical == COL_TITLE:  # always shown: it names the row
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsUserCheckable)
                item.setToolTip("Always shown")
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        up = QPushButton("Move &Up")
        up.setAccessibleName("Move the column up")
        up.clicked.connect(lambda: self.move_current(-1))
        down = QPushButton("Move &Down")
        down.setAccessibleName("Move the column down")
        down.clicked.connect(lambda: self.move_current(1))
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)

        moves = QVBoxLayout()
        moves.addWidget(up)
        moves.addWidget(down)
        moves.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.list, 1)
        body.addLayout(moves)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Tick the columns to show. Drag them to change their order."))
        layout.addLayout(body)
        layout.addWidget(buttons)

    def move_current(self, step: int) -> None:
        """Move the current column `step` places (negative: up)."""
        row = self.list.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < self.list.count():
            return
        item = self.list.takeItem(row)
        self.list.insertItem(target, item)
        self.list.setCurrentRow(target)

    def chosen(self) -> tuple[list[int], set[int]]:
        """The logical columns in the chosen order, and those left unticked."""
        items = [self.list.item(row) for row in range(self.list.count())]
        order = [int(item.data(_LOGICAL_ROLE)) for item in items]
        hidden = {
            int(item.data(_LOGICAL_ROLE))
            for item in items
            if item.checkState() != Qt.CheckState.Checked
        }
        return order, hidden

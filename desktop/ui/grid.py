"""The campaign grid: table, search, state filter, empty-state text and row counts.

`CampaignGrid` owns the view side of the grid (the model, its sort/filter proxy and the
selection); it knows nothing of actions, the network or the window around it.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from desktop.client.models import Campaign
from desktop.client.store import CampaignStore
from desktop.ui.campaign_model import (
    COL_TITLE,
    COLUMNS,
    CampaignFilterProxy,
    CampaignTableModel,
    Column,
    StateFilter,
)
from pulse_core.stats import CampaignState

SIZE_FROM_ROWS = 50  # see `setResizeContentsPrecision`
LOADING_TEXT = "Loading your campaigns…"
NO_MATCH_TEXT = "No campaign matches the search and filter."
EMPTY_TEXT = "No campaigns yet. Create one with Campaign → New Campaign (Ctrl+N)."
VIEWER_EMPTY_TEXT = (
    "No campaigns yet. A manager or an admin of your company creates them; "
    "they will appear here by themselves."
)
_SELECT_ROW = (
    QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
)


class CampaignGrid(QWidget):
    """The live table of one marketer's campaigns, with its filters."""

    selectionChanged = Signal()
    openRequested = Signal()  # a double click, Enter or Return on a row
    countsChanged = Signal(int, int)  # shown, total

    def __init__(self, store: CampaignStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.loaded = False
        self.size_columns_on_load = True  # False once a saved column layout is restored
        self.empty_text = EMPTY_TEXT
        self.model = CampaignTableModel(store, self)
        self.proxy = CampaignFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search campaigns or targets (Ctrl+F)")
        self.search.setAccessibleName("Search campaigns")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(320)
        self.state_filter = QComboBox()
        self.state_filter.setAccessibleName("Show campaigns in state")
        for label, state in StateFilter.CHOICES:
            self.state_filter.addItem(label, state)

        self.table = QTableView()
        self.table.setObjectName("campaignGrid")
        self.table.setAccessibleName("Campaigns")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(COL_TITLE, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # Shift/Ctrl-click and Ctrl+A select several rows, to copy them; the actions on one
        # campaign apply only while exactly one row is selected (`selected_campaign`).
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        # Columns fit the rows in sight plus a few more (each row measured costs 13 cells ×
        # ~8 roles: 200 rows took 50-140 ms of a sign-in to 10,000 campaigns).
        header.setResizeContentsPrecision(SIZE_FROM_ROWS)
        header.resizeSection(COL_TITLE, 220)
        self.table.setWordWrap(False)
        self.empty_label = QLabel(LOADING_TEXT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.context_menu = QMenu(self)
        self.stale = False
        self.stale_notice = QLabel()  # "Offline — data as of 09:12": the rows are a saved copy
        self.stale_notice.setObjectName("staleNotice")
        self.stale_notice.setAccessibleName("Offline notice")
        self.stale_notice.setWordWrap(True)
        self.stale_notice.setStyleSheet(
            "background: palette(alternate-base); color: palette(window-text);"
            " border: 1px solid palette(mid); border-radius: 4px; padding: 4px 8px;"
        )
        self.stale_notice.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stale_notice)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table, 1)

        self.search.textChanged.connect(self._filter_changed)
        self.state_filter.currentIndexChanged.connect(self._filter_changed)
        selection = self.table.selectionModel()
        selection.selectionChanged.connect(lambda *_: self.selectionChanged.emit())
        self.table.doubleClicked.connect(lambda _index: self.openRequested.emit())
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            enter = QShortcut(QKeySequence(key), self.table)
            enter.setContext(Qt.ShortcutContext.WidgetShortcut)
            enter.activated.connect(self.openRequested)
        self.table.customContextMenuRequested.connect(self._context_menu)
        for signal in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.layoutChanged,
            self.proxy.modelReset,
        ):
            signal.connect(self.update_counts)

    # ---- data ---------------------------------------------------------------------------

    def load(self, campaigns: list[Campaign]) -> None:
        """Show a full list: the first load is presorted and sizes the columns."""
        first_load = not self.store
        if first_load:
            rows = self.proxy.presorted(campaigns)
            self.proxy.fill_presorted(lambda: self.store.replace_all(rows))
        else:
            self.store.replace_all(campaigns)
        if first_load and campaigns and self.size_columns_on_load:
            self.size_columns()
        self.loaded = True
        self.update_counts()
        self.selectionChanged.emit()

    def size_columns(self) -> None:
        """Fit the columns to their contents, the campaign title at least 180 pixels wide."""
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(COL_TITLE, max(180, self.table.columnWidth(COL_TITLE)))

    # ---- what is shown --------------------------------------------------------------------

    def visible_columns(self) -> list[Column]:
        """The columns shown, in the order they appear (moved and hidden ones considered)."""
        header = self.table.horizontalHeader()
        logical = (header.logicalIndex(visual) for visual in range(header.count()))
        return [COLUMNS[n] for n in logical if not header.isSectionHidden(n)]

    def shown_campaigns(self) -> list[Campaign]:
        """The rows that pass the search and filter, in the grid's sort order."""
        proxy, rows = self.proxy, self.store.rows
        return [rows[proxy.mapToSource(proxy.index(r, 0)).row()] for r in range(proxy.rowCount())]

    # ---- selection ----------------------------------------------------------------------

    def _selected_rows(self) -> list[int]:
        """The proxy rows with a selected cell, top to bottom."""
        rows: set[int] = set()
        selection = self.table.selectionModel().selection()
        for selected in (selection.at(i) for i in range(selection.count())):
            rows.update(range(selected.top(), selected.bottom() + 1))
        return sorted(rows)

    def selected_campaigns(self) -> list[Campaign]:
        """The selected rows' campaigns, in the grid's order."""
        proxy, rows = self.proxy, self.store.rows
        return [rows[proxy.mapToSource(proxy.index(r, 0)).row()] for r in self._selected_rows()]

    def selected_campaign(self) -> Campaign | None:
        """The selected campaign while exactly one row is selected, else None."""
        rows = self._selected_rows()
        if len(rows) != 1:
            return None
        campaign = self.proxy.campaign(self.proxy.index(rows[0], 0))
        return self.store.get(campaign.id) if campaign else None

    def select_campaign(self, campaign_id: int) -> bool:
        row = self.store.row_of(campaign_id)
        if row is None:
            return False
        index = self._proxy_index(row)
        if not index.isValid():  # filtered out: show everything again
            self.state_filter.setCurrentIndex(0)
            self.search.clear()
            index = self._proxy_index(row)
        self.table.selectionModel().setCurrentIndex(index, _SELECT_ROW)
        self.table.scrollTo(index)
        return True

    def _proxy_index(self, source_row: int) -> QModelIndex:
        return self.proxy.mapFromSource(self.model.index(source_row, 0))

    def _context_menu(self, point: QPoint) -> None:
        index = self.table.indexAt(point)
        if index.isValid():
            if index.row() not in self._selected_rows():
                self.table.selectionModel().setCurrentIndex(index, _SELECT_ROW)
            self.context_menu.popup(self.table.viewport().mapToGlobal(point))

    # ---- filters and counts -------------------------------------------------------------

    def _filter_changed(self, *_args: object) -> None:
        self.proxy.set_text(self.search.text())
        state = self.state_filter.currentData()  # Qt gives the enum back as its str value
        self.proxy.set_state(CampaignState(state) if state else None)
        self.update_counts()

    def update_counts(self, *_args: object) -> None:
        total, shown = len(self.store), self.proxy.rowCount()
        if not self.loaded:
            self.empty_label.setText(LOADING_TEXT)
        elif total == 0:
            self.empty_label.setText(self.empty_text)
        elif shown == 0:
            self.empty_label.setText(NO_MATCH_TEXT)
        self.empty_label.setVisible(shown == 0)
        self.countsChanged.emit(shown, total)

    def detach(self) -> None:
        self.model.detach()

    # ---- a saved copy, shown while the server cannot be reached -------------------------

    def set_stale(self, notice: str | None) -> None:
        """Show `notice` above the rows and dim them (in the palette's disabled text colour,
        which reads in light and dark themes) while they are a saved copy; None: live."""
        self.stale = notice is not None
        self.stale_notice.setText(notice or "")
        self.stale_notice.setVisible(self.stale)
        self._dim_rows()

    def _dim_rows(self) -> None:
        palette = QPalette()  # nothing set: the table follows the theme again
        if self.stale:
            palette = QPalette(self.palette())
            dim = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
            for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive):
                palette.setColor(group, QPalette.ColorRole.Text, dim)
        self.table.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.stale:
            self._dim_rows()  # the theme changed: dim in its colours


def count_text(shown: int, total: int) -> str:
    return f"{total:,} campaigns" if shown == total else f"{shown:,} of {total:,} campaigns"

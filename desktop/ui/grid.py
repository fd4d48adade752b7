"""The campaign grid: table, search, state filter, empty-state text and row counts.

`CampaignGrid` owns the view side of the grid (the model, its sort/filter proxy and the
selection); it knows nothing of actions, the network or the window around it.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal
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
    CampaignFilterProxy,
    CampaignTableModel,
    StateFilter,
)

LOADING_TEXT = "Loading your campaigns…"
NO_MATCH_TEXT = "No campaign matches the search and filter."
EMPTY_TEXT = "No campaigns yet."


class CampaignGrid(QWidget):
    """The live table of one marketer's campaigns, with its filters."""

    selectionChanged = Signal()
    openRequested = Signal()  # a double click (or Enter) on a row
    countsChanged = Signal(int, int)  # shown, total

    def __init__(self, store: CampaignStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.loaded = False
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
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setResizeContentsPrecision(200)  # size columns from the first rows only
        header.resizeSection(COL_TITLE, 220)
        self.table.setWordWrap(False)
        self.empty_label = QLabel(LOADING_TEXT)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.context_menu = QMenu(self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table, 1)

        self.search.textChanged.connect(self._filter_changed)
        self.state_filter.currentIndexChanged.connect(self._filter_changed)
        selection = self.table.selectionModel()
        selection.selectionChanged.connect(lambda *_: self.selectionChanged.emit())
        self.table.doubleClicked.connect(lambda _index: self.openRequested.emit())
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
            campaigns = self.proxy.presorted(campaigns)
        self.store.replace_all(campaigns)
        if first_load and campaigns:
            self.table.resizeColumnsToContents()
            self.table.setColumnWidth(COL_TITLE, max(180, self.table.columnWidth(COL_TITLE)))
        self.loaded = True
        self.update_counts()
        self.selectionChanged.emit()

    # ---- selection ----------------------------------------------------------------------

    def selected_campaign(self) -> Campaign | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        campaign = self.proxy.campaign(rows[0])
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
        self.table.selectRow(index.row())
        self.table.scrollTo(index)
        return True

    def _proxy_index(self, source_row: int) -> QModelIndex:
        return self.proxy.mapFromSource(self.model.index(source_row, 0))

    def _context_menu(self, point: QPoint) -> None:
        index = self.table.indexAt(point)
        if index.isValid():
            self.table.selectRow(index.row())
            self.context_menu.popup(self.table.viewport().mapToGlobal(point))

    # ---- filters and counts -------------------------------------------------------------

    def _filter_changed(self, *_args: object) -> None:
        self.proxy.set_text(self.search.text())
        self.proxy.set_state(self.state_filter.currentData())
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


def count_text(shown: int, total: int) -> str:
    return f"{total:,} campaigns" if shown == total else f"{shown:,} of {total:,} campaigns"

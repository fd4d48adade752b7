"""File → Export CSV… and Edit → Copy: the grid's rows, as shown, into a spreadsheet.

Both take what the grid shows (the search and filter applied, the visible columns in their
order on screen, the rows in their sort order) and write raw values through
`desktop.client.export`. Copy uses the raw numbers too ("1234.50", not "1,234.50"): a
spreadsheet parses them as numbers, where display text with thousands separators pastes as
text, or as the wrong number in a locale whose decimal separator is a comma.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox, QWidget

from desktop.client.export import ExportColumn, ExportError, tsv_text, write_csv
from desktop.ui.grid import CampaignGrid

CSV_FILTER = "CSV files (*.csv);;All files (*)"


def default_file_name(today: dt.date | None = None) -> str:
    return f"campaigns-{(today or dt.date.today()).isoformat()}.csv"


def documents_folder() -> Path:
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    folder = Path(location) if location else Path.home()
    return folder if folder.is_dir() else Path.home()


class SpreadsheetActions(QObject):
    """Export CSV… (Ctrl+Shift+E, Ctrl+Shift+S) and Copy (Ctrl+C) of the campaign grid."""

    message = Signal(str)  # what was done, for the status bar

    def __init__(self, grid: CampaignGrid, parent: QWidget) -> None:
        super().__init__(parent)
        self.grid = grid
        self.parent_widget = parent
        self.folder: Path | None = None  # where the last export went, this session
        self.error_box: QMessageBox | None = None

        self.export = QAction("&Export CSV…", self)
        # Not Ctrl+E: that is Edit Campaign.
        self.export.setShortcuts([QKeySequence("Ctrl+Shift+E"), QKeySequence("Ctrl+Shift+S")])
        tip = "Save the campaigns shown, with the columns shown, as a CSV file"
        self.export.setToolTip(f"{tip} (Ctrl+Shift+E)")
        self.export.setStatusTip(tip)
        self.export.triggered.connect(self.export_csv)
        self.copy = QAction("&Copy", self)
        self.copy.setShortcut(QKeySequence.StandardKey.Copy)
        tip = "Copy the selected rows as tab-separated text, for a spreadsheet"
        self.copy.setToolTip(f"{tip} (Ctrl+C)")
        self.copy.setStatusTip(tip)
        self.copy.setEnabled(False)
        self.copy.triggered.connect(self.copy_selected)
        grid.selectionChanged.connect(self._selection_changed)

    def columns(self) -> list[ExportColumn]:
        """The visible columns, left to right, with their spreadsheet values."""
        return [ExportColumn(c.header, c.plain or c.text) for c in self.grid.visible_columns()]

    # ---- export -------------------------------------------------------------------------

    def export_csv(self) -> None:
        """Ask where, then write the file; a failure is shown, never raised."""
        path = self.ask_path()
        if path is not None:
            self.write(path)

    def ask_path(self) -> Path | None:
        default = (self.folder or documents_folder()) / default_file_name()
        chosen, _filter = QFileDialog.getSaveFileName(
            self.parent_widget, "Export Campaigns as CSV", str(default), CSV_FILTER
        )
        if not chosen:
            return None
        path = Path(chosen)
        return path if path.suffix else path.with_suffix(".csv")

    def write(self, path: Path) -> bool:
        """Write the rows shown to `path`; False (and a message box) when it failed."""
        columns, campaigns = self.columns(), self.grid.shown_campaigns()
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            count = write_csv(path, campaigns, columns)
        except ExportError as error:
            self.show_error(error.message)
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self.folder = path.parent
        noun = "campaign" if count == 1 else "campaigns"
        self.message.emit(f"Exported {count:,} {noun} to {path}")
        return True

    def show_error(self, text: str) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Export failed",
            text,
            QMessageBox.StandardButton.Ok,
            self.parent_widget,
        )
        box.setAccessibleName("Export failed")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result: setattr(self, "error_box", None))
        self.error_box = box
        box.open()

    # ---- copy ---------------------------------------------------------------------------

    def copy_selected(self) -> int:
        """Put the selected rows on the clipboard, with a header line; how many were copied."""
        campaigns = self.grid.selected_campaigns()
        if not campaigns:
            return 0
        QGuiApplication.clipboard().setText(tsv_text(campaigns, self.columns()))
        noun = "row" if len(campaigns) == 1 else "rows"
        self.message.emit(f"Copied {len(campaigns):,} {noun}")
        return len(campaigns)

    def _selection_changed(self) -> None:
        self.copy.setEnabled(self.grid.table.selectionModel().hasSelection())

"""Export CSV and Copy of a 10,000-row grid: the Qt-free writer, and the whole path in the app.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.desktop_export [--rows 10000 --repeat 5]

"write_csv" times `desktop.client.export.write_csv` alone (all 13 columns, to a temporary
folder, fsync included). "Export CSV in the app" times `SpreadsheetActions.write` on a main
window offscreen with the rows loaded through the bridge and sorted by spend: collecting the
rows and columns shown, then writing (the file dialog is left out). "Copy" selects every row
(Ctrl+A) and times `copy_selected` up to the text on the clipboard. Prints medians and minima.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from bench.desktop_bench import campaigns, offline_window, pump_until
from desktop.client.export import ExportColumn, write_csv
from desktop.ui.campaign_model import COL_SPEND_TO_DATE, COLUMNS


def timed(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), min(runs)


def line(what: str, times: tuple[float, float]) -> str:
    median, best = times
    return f"| {what} | {median * 1000:.0f} ms | {best * 1000:.0f} ms |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    app = QApplication(sys.argv)
    rows = campaigns(args.rows)
    columns = [ExportColumn(c.header, c.plain or c.text) for c in COLUMNS]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "campaigns.csv"
        print(f"| {args.rows:,} rows, {len(COLUMNS)} columns | median | best |")
        print("|---|---|---|")
        write = timed(lambda: write_csv(path, rows, columns), args.repeat)
        print(line("write_csv (Qt-free)", write))

        window, bridge, runner = offline_window(folder)
        bridge.on_campaigns(rows)
        pump_until(lambda: window.loaded)
        window.table.sortByColumn(COL_SPEND_TO_DATE, Qt.SortOrder.DescendingOrder)
        sheet = window.spreadsheet
        print(line("rows shown, in sort order", timed(window.grid.shown_campaigns, args.repeat)))
        print(line("Export CSV in the app", timed(lambda: sheet.write(path), args.repeat)))
        window.table.selectAll()
        print(line("Copy (Ctrl+A, Ctrl+C)", timed(sheet.copy_selected, args.repeat)))
        size = path.stat().st_size
        copied = len(QApplication.clipboard().text())
        print(f"\nCSV file: {size / 1e6:.2f} MB; clipboard: {copied / 1e6:.2f} M characters")
        window.shutdown()
        window.close()
        bridge.close()
        runner.stop()
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())

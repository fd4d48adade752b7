"""Campaign rows as spreadsheet text: CSV files and tab-separated clipboard text, Qt-free.

Cells hold raw values, not the grid's display strings: counts as integers and money as plain
decimals with exactly two places ("1234.50"), so that every spreadsheet reads them as numbers
whatever its locale's thousands separator.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from desktop.client.models import Campaign

# Excel reads a CSV file as UTF-8 only when it starts with a byte order mark; LibreOffice,
# Google Sheets, pandas (encoding="utf-8-sig") and Python's csv module all accept one.
CSV_ENCODING = "utf-8-sig"
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # no EDQUOT on Windows


Cell = str | int  # the csv module writes an int as its digits, in C


@dataclass(frozen=True, slots=True)
class ExportColumn:
    """One column of an export: its header and a campaign's cell."""

    header: str
    cell: Callable[[Campaign], Cell]


class ExportError(Exception):
    """The export file could not be written; the message says what to do next."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def money_cell(value: float) -> str:
    """An amount with exactly two decimals (cents), no thousands separator: "1234.50"."""
    return f"{value + 0.0:.2f}"  # + 0.0 turns -0.0 into 0.0: no "-0.00"


def table_rows(
    campaigns: Iterable[Campaign], columns: Sequence[ExportColumn]
) -> Iterable[list[Cell]]:
    """The header row, then one row of cells per campaign."""
    yield [column.header for column in columns]
    cells = [column.cell for column in columns]
    for campaign in campaigns:
        yield [cell(campaign) for cell in cells]


def tsv_text(campaigns: Iterable[Campaign], columns: Sequence[ExportColumn]) -> str:
    """Tab-separated text with a header line, as spreadsheets paste it (quoted where needed)."""
    out = io.StringIO()
    csv.writer(out, dialect="excel-tab", lineterminator="\n").writerows(
        table_rows(campaigns, columns)
    )
    return out.getvalue()


def write_csv(path: Path, campaigns: Iterable[Campaign], columns: Sequence[ExportColumn]) -> int:
    """Write an RFC 4180 CSV file (UTF-8 with a BOM, CRLF) and return the number of rows.

    The rows go to a temporary file in the same folder that replaces `path` only once it is
    complete, so a failed export leaves neither a half-written file nor a damaged older one.
    Raises `ExportError`.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    written = 0
    try:
        # os.open with 0o666 lets the umask decide the permissions, as for any new file.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            # errors="replace": a lone surrogate (valid in JSON) becomes "?", not a failure.
            with open(fd, "w", encoding=CSV_ENCODING, errors="replace", newline="") as out:
                writer = csv.writer(out)  # the "excel" dialect is RFC 4180: CRLF, quotes
                for row in table_rows(campaigns, columns):
                    writer.writerow(row)
                    written += 1
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as error:
        raise ExportError(export_error_message(error, path), path) from error
    return written - 1


def export_error_message(error: OSError, path: Path) -> str:
    """What went wrong writing `path`, and what to do about it."""
    folder = path.parent
    if isinstance(error, PermissionError):
        return (
            f"Campaign Pulse may not write {path.name} in {folder}. If the file is open in "
            "a spreadsheet, close it there; otherwise choose another folder."
        )
    if error.errno in _DISK_FULL:
        return f"The disk of {folder} is full. Free some space or choose another folder."
    if isinstance(error, FileNotFoundError):
        return f"The folder {folder} does not exist any more. Choose another folder."
    if error.errno == errno.EROFS:
        return f"{folder} is read-only. Choose another folder."
    reason = error.strerror or str(error)
    return f"Could not write {path.name} in {folder}: {reason}. Choose another folder."

"""Spreadsheet export without Qt: CSV files and tab-separated text of campaign rows."""

from __future__ import annotations

import csv
import errno
import os
from pathlib import Path

import pytest

from desktop.client.export import (
    ExportColumn,
    ExportError,
    money_cell,
    tsv_text,
    write_csv,
)
from desktop.client.models import Campaign

from .conftest import make_campaign

COLUMNS = [
    ExportColumn("Campaign", lambda c: c.title),
    ExportColumn("Spend to date", lambda c: money_cell(c.stats.spend_to_date)),
    ExportColumn("Pending offers", lambda c: c.stats.pending_offers),
]


def campaigns() -> list[Campaign]:
    return [
        make_campaign(1, 'Été à Zürich, "Größe" 日本', spend=1234.5, pending=1234567),
        make_campaign(2, "Plain", spend=0.1 + 0.2, pending=0),
        make_campaign(3, "=SUM(A1)\tline", spend=-0.0),
    ]


def test_csv_holds_a_header_and_raw_numbers_in_utf8_with_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "campaigns.csv"
    assert write_csv(path, campaigns(), COLUMNS) == 3
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfCampaign,Spend to date,Pending offers\r\n")
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["Campaign", "Spend to date", "Pending offers"],
        ['Été à Zürich, "Größe" 日本', "1234.50", "1234567"],
        ["Plain", "0.30", "0"],
        ["=SUM(A1)\tline", "0.00", "0"],
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["campaigns.csv"]


def test_tab_separated_text_quotes_only_what_needs_it() -> None:
    text = tsv_text(campaigns()[1:], COLUMNS)
    assert text == (
        "Campaign\tSpend to date\tPending offers\nPlain\t0.30\t0\n" + '"=SUM(A1)\tline"\t0.00\t0\n'
    )


def test_a_failed_export_keeps_the_older_file_and_leaves_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "campaigns.csv"
    path.write_text("yesterday's export")

    def locked(src: object, dst: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", locked)
    with pytest.raises(ExportError) as failure:
        write_csv(path, campaigns(), COLUMNS)
    assert "close it there" in failure.value.message
    monkeypatch.undo()

    def broken(campaign: Campaign) -> str:
        if campaign.id == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return campaign.title

    with pytest.raises(ExportError, match=r"disk .* is full"):
        write_csv(path, campaigns(), [ExportColumn("Campaign", broken)])
    assert [p.name for p in tmp_path.iterdir()] == ["campaigns.csv"]
    assert path.read_text() == "yesterday's export"


def test_a_missing_folder_says_to_choose_another(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"does not exist any more\. Choose another folder"):
        write_csv(tmp_path / "gone" / "campaigns.csv", campaigns(), COLUMNS)

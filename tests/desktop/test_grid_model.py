"""The campaign grid's model and proxy: Qt's model checks, raw-value sorting, cell highlights."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt

from desktop.client.store import CampaignStore
from desktop.ui.campaign_model import (
    COL_PENDING_OFFERS,
    COL_SPEND_TO_DATE,
    COL_STATE,
    COL_TITLE,
    COLUMNS,
    RAW_ROLE,
    CampaignFilterProxy,
    CampaignTableModel,
)
from pulse_core.stats import CampaignState, CampaignStats

from .conftest import make_campaign, make_event


def filled_store(count: int = 30) -> CampaignStore:
    store = CampaignStore()
    states = ["active", "not_launched", "archived", "paused"]
    store.replace_all(
        make_campaign(i, state=states[i % 4], pending=(i * 37) % 1000, spend=i * 9.5)
        for i in range(1, count + 1)
    )
    return store


def test_model_passes_qtmodeltester_through_inserts_changes_and_removals(
    qtmodeltester: Any,
) -> None:
    store = filled_store()
    model = CampaignTableModel(store)
    qtmodeltester.check(model, force_py=True)
    store.upsert(make_campaign(999))
    store.apply_events([make_event(3, 1, stats=CampaignStats(pending_offers=5))])
    store.remove(5)
    store.replace_all([make_campaign(i) for i in range(10, 260)])  # in batches of 100
    qtmodeltester.check(model, force_py=True)
    proxy = CampaignFilterProxy()
    proxy.setSourceModel(model)
    qtmodeltester.check(proxy, force_py=True)
    # Stop the highlight timer: its expiry must not reach the tester after it let go of the model.
    model.detach()


def test_proxy_sorts_numbers_as_numbers_not_as_text(qapp: Any) -> None:
    store = CampaignStore()
    store.replace_all(
        [make_campaign(1, pending=9), make_campaign(2, pending=100), make_campaign(3, pending=20)]
    )
    proxy = CampaignFilterProxy()
    proxy.setSourceModel(CampaignTableModel(store))
    proxy.sort(COL_PENDING_OFFERS, Qt.SortOrder.AscendingOrder)
    shown = [proxy.index(r, COL_PENDING_OFFERS).data() for r in range(3)]
    assert shown == ["9", "20", "100"]  # text order would be 100, 20, 9
    store.upsert(make_campaign(1, pending=1_000))
    shown = [proxy.index(r, COL_PENDING_OFFERS).data() for r in range(3)]
    assert shown == ["20", "100", "1,000"]


def test_hundreds_of_new_rows_arrive_whole_and_sorted(qapp: Any) -> None:
    store = CampaignStore()
    proxy = CampaignFilterProxy()
    proxy.setSourceModel(CampaignTableModel(store))
    proxy.sort(COL_PENDING_OFFERS, Qt.SortOrder.DescendingOrder)
    store.replace_all([make_campaign(i, pending=(i * 37) % 1000) for i in range(1, 251)])
    raw = [proxy.index(r, COL_PENDING_OFFERS).data(RAW_ROLE) for r in range(proxy.rowCount())]
    assert raw == sorted(((i * 37) % 1000 for i in range(1, 251)), reverse=True)


def pending_shown(proxy: CampaignFilterProxy) -> list[int]:
    return [proxy.index(r, COL_PENDING_OFFERS).data(RAW_ROLE) for r in range(proxy.rowCount())]


def test_a_presorted_first_fill_shows_the_sort_and_later_rows_and_changes_keep_it(
    qapp: Any,
) -> None:
    store = CampaignStore()
    proxy = CampaignFilterProxy()
    proxy.setSourceModel(CampaignTableModel(store))
    proxy.sort(COL_PENDING_OFFERS, Qt.SortOrder.DescendingOrder)
    rows = proxy.presorted([make_campaign(i, pending=(i * 37) % 100) for i in range(1, 251)])
    proxy.fill_presorted(lambda: store.replace_all(rows))  # more rows than one insert's chunk
    assert pending_shown(proxy) == sorted(((i * 37) % 100 for i in range(1, 251)), reverse=True)
    assert (proxy.sortColumn(), proxy.sortOrder()) == (
        COL_PENDING_OFFERS,
        Qt.SortOrder.DescendingOrder,
    )

    store.apply_events([make_event(1, 1, stats=CampaignStats(pending_offers=500))])
    assert pending_shown(proxy)[0] == 500
    store.upsert(make_campaign(99, pending=50))
    store.apply_events([make_event(2, 2, stats=CampaignStats(pending_offers=-1))])
    shown = pending_shown(proxy)
    assert shown == sorted(shown, reverse=True)
    assert 50 in shown and shown[-1] == -1


def test_a_presorted_first_fill_moves_a_row_only_when_its_sorted_column_changes(
    qapp: Any,
) -> None:
    store = CampaignStore()
    proxy = CampaignFilterProxy()
    proxy.setSourceModel(CampaignTableModel(store))
    proxy.sort(COL_TITLE, Qt.SortOrder.AscendingOrder)
    rows = proxy.presorted([make_campaign(i, f"Campaign {chr(90 - i)}") for i in range(1, 6)])
    proxy.fill_presorted(lambda: store.replace_all(rows))
    titles = [proxy.index(r, COL_TITLE).data() for r in range(5)]
    assert titles == sorted(titles)

    store.apply_events([make_event(5, 1, stats=CampaignStats(pending_offers=7))])
    assert [proxy.index(r, COL_TITLE).data() for r in range(5)] == titles
    store.upsert(make_campaign(5, "Campaign ZZ"))
    assert [proxy.index(r, COL_TITLE).data() for r in range(5)][-1] == "Campaign ZZ"


def test_money_and_state_sort_on_raw_values(qapp: Any) -> None:
    store = filled_store(12)
    proxy = CampaignFilterProxy()
    proxy.setSourceModel(CampaignTableModel(store))
    proxy.sort(COL_SPEND_TO_DATE, Qt.SortOrder.DescendingOrder)
    raw = [proxy.index(r, COL_SPEND_TO_DATE).data(RAW_ROLE) for r in range(12)]
    assert raw == sorted(raw, reverse=True)
    proxy.sort(COL_STATE, Qt.SortOrder.AscendingOrder)
    labels = [proxy.index(r, COL_STATE).data() for r in range(12)]
    assert labels == ["Active"] * 3 + ["Paused"] * 3 + ["Not launched"] * 3 + ["Archived"] * 3


def test_filter_by_state_and_search_text(qapp: Any) -> None:
    store = filled_store(40)
    store.upsert(make_campaign(100, "Winter Boots", state="active"))
    proxy = CampaignFilterProxy()
    proxy.setSourceModel(CampaignTableModel(store))
    proxy.set_state(CampaignState.ARCHIVED)
    assert proxy.rowCount() == 10
    proxy.set_state(CampaignState.PAUSED)
    assert proxy.rowCount() == 10
    assert {proxy.index(r, COL_STATE).data() for r in range(10)} == {"Paused"}
    proxy.set_state(None)
    proxy.set_text("winter")
    assert proxy.rowCount() == 1
    assert proxy.index(0, COL_TITLE).data() == "Winter Boots"
    proxy.set_state(CampaignState.NOT_LAUNCHED)
    assert proxy.rowCount() == 0


def test_live_change_signals_and_highlights_only_the_changed_cells(qtbot: Any) -> None:
    store = filled_store(5)
    model = CampaignTableModel(store)
    changed: list[tuple[int, int, int, int]] = []
    model.dataChanged.connect(
        lambda a, b, roles=(): changed.append((a.row(), a.column(), b.row(), b.column()))
    )
    store.apply_events([make_event(2, 1, stats=CampaignStats(pending_offers=77, spend_to_date=19))])
    assert changed == [(1, COL_PENDING_OFFERS, 1, COL_PENDING_OFFERS)]
    assert model.is_highlighted(2, COL_PENDING_OFFERS)
    assert model.index(1, COL_PENDING_OFFERS).data(Qt.ItemDataRole.BackgroundRole) is not None
    assert model.index(1, COL_TITLE).data(Qt.ItemDataRole.BackgroundRole) is None
    qtbot.waitUntil(lambda: not model.is_highlighted(2, COL_PENDING_OFFERS), timeout=3000)
    assert model.index(1, COL_PENDING_OFFERS).data(Qt.ItemDataRole.BackgroundRole) is None


def test_every_column_has_a_header_and_raw_value(qapp: Any) -> None:
    model = CampaignTableModel(filled_store(1))
    for column in range(len(COLUMNS)):
        assert model.headerData(column, Qt.Orientation.Horizontal)
        assert model.index(0, column).data(RAW_ROLE) is not None
    assert model.rowCount(model.index(0, 0)) == 0
    assert model.index(5, 0).data() is None and not QModelIndex().isValid()

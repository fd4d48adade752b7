"""The plain-Python campaign store: row changes name exactly what changed."""

from __future__ import annotations

from dataclasses import replace

from desktop.client.store import CampaignStore, RowChanged, RowsInserted, RowsRemoved
from pulse_core.stats import CampaignStats

from .conftest import make_campaign, make_event


def recording_store() -> tuple[CampaignStore, list[object]]:
    store = CampaignStore()
    changes: list[object] = []
    store.add_listener(changes.append)
    return store, changes


def test_replace_all_inserts_in_one_block_with_before_and_after_events() -> None:
    store, changes = recording_store()
    store.replace_all([make_campaign(1), make_campaign(2), make_campaign(3)])
    assert changes == [RowsInserted(0, 2, done=False), RowsInserted(0, 2)]
    assert [c.id for c in store] == [1, 2, 3]
    assert store.row_of(3) == 2


def test_replace_all_updates_removes_and_inserts_without_a_reset() -> None:
    store, changes = recording_store()
    store.replace_all([make_campaign(1), make_campaign(2), make_campaign(3)])
    changes.clear()
    store.replace_all([make_campaign(3, pending=5), make_campaign(1), make_campaign(4)])
    assert RowsRemoved(1, 1, done=False) in changes and RowsRemoved(1, 1) in changes
    assert RowChanged(1, 3, frozenset({"pending_offers"})) in changes
    assert changes[-1] == RowsInserted(2, 2)
    assert [c.id for c in store] == [1, 3, 4]
    assert store.row_of(4) == 2 and store.row_of(3) == 1


def test_unchanged_campaign_emits_nothing() -> None:
    store, changes = recording_store()
    store.upsert(make_campaign(1))
    changes.clear()
    store.upsert(make_campaign(1))
    assert changes == []


def test_events_collapse_to_one_change_per_row_with_the_latest_stats() -> None:
    store, changes = recording_store()
    store.replace_all([make_campaign(1), make_campaign(2)])
    changes.clear()
    frames = [
        make_event(1, seq, stats=CampaignStats(pending_offers=seq, banner_views=seq % 2))
        for seq in range(1, 101)
    ]
    fetch = store.apply_events(frames)
    assert fetch == set()
    assert changes == [RowChanged(0, 1, frozenset({"pending_offers"}))]
    assert store.get(1).stats.pending_offers == 100


def test_events_without_stats_unknown_campaigns_and_state_changes_ask_for_a_fetch() -> None:
    store, _ = recording_store()
    store.replace_all([make_campaign(1), make_campaign(2)])
    fetch = store.apply_events(
        [
            make_event(1, 1),  # no stats
            make_event(2, 2, "target_populated", stats=CampaignStats(target_population=9)),
            make_event(3, 3, stats=CampaignStats()),  # unknown campaign
            make_event(1, 4, stats=CampaignStats(current_offers=1), reason="ad_activity"),
        ]
    )
    assert fetch == {1, 2, 3}
    assert store.get(2).stats.target_population == 9


def test_a_paused_resumed_archived_or_edited_campaign_is_fetched_for_its_new_row() -> None:
    store, _ = recording_store()
    store.replace_all([make_campaign(n) for n in range(1, 6)])
    reasons = ["paused", "resumed", "archived", "edited", "deposit"]
    frames = [
        make_event(n, n, stats=CampaignStats(), reason=reason, actor={"id": 2, "name": "Bob"})
        for n, reason in enumerate(reasons, start=1)
    ]
    assert store.apply_events(frames) == {1, 2, 3, 4}


def test_state_change_is_reported_as_a_field() -> None:
    store, changes = recording_store()
    campaign = make_campaign(7, state="not_launched")
    store.upsert(campaign)
    changes.clear()
    launched = make_campaign(7, state="active", population_status="populating")
    store.upsert(replace(launched, launched_at="2025-01-01T00:00:00Z"))
    assert changes == [RowChanged(0, 7, frozenset({"state", "population_status", "launched_at"}))]


def test_remove_reindexes_later_rows() -> None:
    store, _ = recording_store()
    store.replace_all([make_campaign(i) for i in range(1, 6)])
    store.remove(2)
    assert [store.row_of(i) for i in (1, 3, 4, 5)] == [0, 1, 2, 3]
    assert 2 not in store


def test_event_stats_the_row_already_reflects_are_skipped() -> None:
    store, changes = recording_store()
    store.upsert(make_campaign(1, pending=40, as_of_seq=10))
    changes.clear()
    store.apply_events([make_event(1, 9, stats=CampaignStats(pending_offers=30))])
    store.apply_events([make_event(1, 10, stats=CampaignStats(pending_offers=40))])
    assert changes == []
    store.apply_events([make_event(1, 11, stats=CampaignStats(pending_offers=50))])
    assert store.get(1).stats.pending_offers == 50
    assert store.get(1).as_of_seq == 11


def test_a_row_fetched_before_newer_event_stats_keeps_those_stats_but_takes_its_state() -> None:
    store, _ = recording_store()
    store.upsert(make_campaign(1, state="not_launched", population_status="not_populated"))
    store.apply_events([make_event(1, 12, stats=CampaignStats(pending_offers=500))])
    # read at seq 11: launched, target populated, offers not yet counted
    store.upsert(make_campaign(1, pending=0, as_of_seq=11))
    row = store.get(1)
    assert row.state.value == "active"
    assert row.target.population_status.value == "populated"
    assert row.stats.pending_offers == 500
    assert row.as_of_seq == 12


def test_a_row_fetched_after_the_event_stats_replaces_them() -> None:
    store, _ = recording_store()
    store.upsert(make_campaign(1))
    store.apply_events([make_event(1, 12, stats=CampaignStats(pending_offers=500))])
    store.upsert(make_campaign(1, pending=480, spend=2.5, as_of_seq=13))
    assert store.get(1).stats.pending_offers == 480
    assert store.get(1).stats.spend_to_date == 2.5
    assert store.get(1).as_of_seq == 13

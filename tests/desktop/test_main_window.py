"""The main window without a server: events fed through the real bridge, as the network does."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt

from desktop.client.alerts import AlertSettings
from desktop.client.flashes import Flash
from desktop.ui import sounds
from desktop.ui.campaign_model import COL_PENDING_OFFERS
from desktop.ui.latency import LatencyProbe
from pulse_core import messages
from pulse_core.stats import CampaignStats

from .conftest import make_campaign, make_event


def load(window: Any, qtbot: Any, campaigns: list[Any]) -> None:
    window.bridge.on_campaigns(campaigns)
    qtbot.waitUntil(lambda: window.loaded and len(window.store) == len(campaigns))


def feed(window: Any, frames: list[Any]) -> None:
    """Deliver frames from the network thread, exactly as the live client does."""
    bridge = window.bridge
    bridge.runner.call_soon(lambda: [bridge.on_event(f) for f in frames])


def test_title_names_the_marketer(main_window: Any) -> None:
    assert main_window.windowTitle() == "Campaign Pulse — Acme Outdoor"


def test_live_event_updates_only_its_row_and_shows_the_seed_flashes(
    main_window: Any, qtbot: Any
) -> None:
    load(main_window, qtbot, [make_campaign(1, "Spring"), make_campaign(2, "Summer")])
    feed(
        main_window,
        [
            make_event(2, 1, "target_populated", stats=CampaignStats(target_population=80)),
            make_event(2, 2, "offers_created", count=50, stats=CampaignStats(pending_offers=50)),
        ],
    )
    # The two events may reach the window in one batch or two: wait for the last one.
    qtbot.waitUntil(lambda: main_window.store.get(2).stats.pending_offers == 50)
    assert main_window.banner.text == messages.TARGET_POPULATED
    assert main_window.banner.title.text() == "<b>Summer</b>"
    assert main_window.store.get(1).stats.pending_offers == 0
    assert main_window.banner.counter.text() == "+1 more"
    main_window.banner.show_next()
    assert main_window.banner.text == messages.offers_created(50)


def test_burst_of_1000_events_is_coalesced_and_the_window_stays_responsive(
    main_window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(main_window, qtbot, [make_campaign(i) for i in range(1, 201)])
    batches: list[int] = []
    apply = main_window.dashboard.apply

    def counting_apply(frames: Any, context: Any) -> Any:
        frames = list(frames)
        batches.append(len(frames))
        return apply(frames, context)

    monkeypatch.setattr(main_window.dashboard, "apply", counting_apply)
    main_window.table.sortByColumn(COL_PENDING_OFFERS, Qt.SortOrder.DescendingOrder)
    frames = [
        make_event(1 + seq % 200, seq, stats=CampaignStats(pending_offers=seq, banner_views=seq))
        for seq in range(1, 1001)
    ]
    probe = LatencyProbe()
    probe.start()
    feed(main_window, frames)
    qtbot.waitUntil(lambda: sum(batches) == 1000, timeout=10_000)
    qtbot.wait(100)  # keep measuring while the grid repaints
    probe.stop()
    print(f"\n1,000-event burst in {len(batches)} batches; {probe.summary()}")
    assert len(batches) <= 20, batches
    assert main_window.store.get(1).stats.pending_offers == 1000
    assert main_window.store.get(200).stats.pending_offers == 999
    top = main_window.proxy.index(0, COL_PENDING_OFFERS).data()
    assert top == "1,000"


def test_actions_follow_the_selected_campaigns_state(main_window: Any, qtbot: Any) -> None:
    load(
        main_window,
        qtbot,
        [
            make_campaign(1, "A new one", state="not_launched"),
            make_campaign(2, "B running", state="active"),
            make_campaign(3, "C old", state="archived"),
            make_campaign(4, "D on hold", state="paused"),
        ],
    )
    enabled = []
    for campaign_id in (1, 2, 3, 4):
        main_window.select_campaign(campaign_id)
        enabled.append(
            (main_window.launch_action.isEnabled(), main_window.refresh_action.isEnabled())
        )
    assert enabled == [(True, False), (False, True), (False, False), (False, False)]
    filters = [
        main_window.state_filter.itemText(n) for n in range(main_window.state_filter.count())
    ]
    assert filters == ["All campaigns", "Active", "Paused", "Not launched", "Archived"]
    assert main_window.launch_action.shortcut().toString() == "Ctrl+L"
    assert main_window.refresh_action.shortcut().toString() == "Ctrl+R"
    context_actions = [a.text() for a in main_window.context_menu.actions() if a.text()]
    assert context_actions[:3] == ["&Launch Campaign…", "&Refresh Offers", "Open &Details"]


def test_a_failed_action_says_what_to_do_next(main_window: Any, qtbot: Any) -> None:
    load(main_window, qtbot, [make_campaign(1, "Spring", state="not_launched")])
    main_window.select_campaign(1)
    main_window.launch_action.trigger()
    main_window.flows.dialog.confirm()  # Launch asks first (test_campaign_flows.py)
    qtbot.waitUntil(lambda: "Cannot reach the server" in main_window.banner.text, timeout=10_000)
    assert main_window.launch_action.isEnabled()


def test_hover_keeps_a_flash_open_and_queued_ones_show_a_count(
    main_window: Any, qtbot: Any
) -> None:
    banner = main_window.banner
    queue = main_window.dashboard.flashes
    queue.push(Flash("first"))
    queue.push(Flash("second"))
    queue.push(Flash("third"))
    assert banner.text == "first" and banner.counter.text() == "+2 more"
    assert banner.remaining_ms() > 3000
    banner.event(QEvent(QEvent.Type.HoverEnter))
    assert banner.remaining_ms() == -1  # stays while hovered
    banner.event(QEvent(QEvent.Type.HoverLeave))
    assert 0 < banner.remaining_ms() <= 2200  # coarse timers may add 5%
    qtbot.waitUntil(lambda: banner.text == "second", timeout=3000)
    main_window.dismiss_action.trigger()
    assert not banner.isVisible() and queue.current is None


def test_without_a_tray_the_window_stays_and_closing_quits(main_window: Any, qtbot: Any) -> None:
    assert not main_window.tray.available  # offscreen has no system tray
    main_window.apply_alert_settings(AlertSettings(close_to_tray=True))
    with qtbot.waitSignal(main_window.quitRequested):
        main_window.close()


def test_hidden_window_notifies_through_the_tray_and_a_click_opens_the_campaign(
    qtbot: Any, offline_bridge: Any, preferences: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from desktop.ui import tray as tray_module
    from desktop.ui.main_window import MainWindow
    from desktop.ui.sounds import SilentPlayer

    monkeypatch.setattr(tray_module, "tray_supported", lambda: True)
    player = SilentPlayer("test")
    window = MainWindow(offline_bridge, preferences, sound_player=player)
    qtbot.addWidget(window)
    window.apply_alert_settings(AlertSettings(desktop_notifications=True, sound=True))
    load(window, qtbot, [make_campaign(4, "Autumn")])
    window.hide()
    feed(window, [make_event(4, 1, "offers_created", count=12, stats=CampaignStats())])
    qtbot.waitUntil(lambda: len(window.tray.notified) == 1)
    assert window.tray.notified[0].text == "12 offers created successfully"
    assert window.tray.tooltip.endswith("1 unread alert")
    assert player.played == ["offers"]
    window.tray.campaignRequested.emit(4)
    qtbot.waitUntil(lambda: 4 in window.details)
    assert window.isVisible() and window.tray.unread == 0
    window.shutdown()


def test_settings_are_remembered_per_user(main_window: Any, preferences: Any) -> None:
    settings = AlertSettings(desktop_notifications=True, sound=True, kinds=frozenset())
    main_window.apply_alert_settings(settings)
    assert preferences.alert_settings("alice@acme.example") == settings
    assert preferences.alert_settings("bob@acme.example") == AlertSettings()
    main_window.tray.muteToggled.emit(True)
    assert preferences.alert_settings("alice@acme.example").muted


def test_no_audio_library_means_silence_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PySide6.QtMultimedia", None)  # import fails
    player = sounds.create_player()
    assert not player.available and "unavailable" in player.reason
    player.play("offers")


def test_no_audio_device_means_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("PySide6.QtMultimedia")
    fake.QMediaDevices = types.SimpleNamespace(audioOutputs=list)  # type: ignore[attr-defined]
    fake.QSoundEffect = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "PySide6.QtMultimedia", fake)
    player = sounds.create_player()
    assert not player.available and "no audio output" in player.reason


def test_detail_view_holds_its_topic_while_open(
    main_window: Any, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(main_window.bridge, "open_campaign", lambda i: calls.append(("open", i)))
    monkeypatch.setattr(main_window.bridge, "close_campaign", lambda i: calls.append(("close", i)))
    load(main_window, qtbot, [make_campaign(3, "Winter")])
    view = main_window.open_campaign(3)
    assert main_window.open_campaign(3) is view  # one view per campaign
    feed(
        main_window,
        [make_event(3, 1, topic="campaign:3", stats=CampaignStats(pending_offers=5))],
    )
    qtbot.waitUntil(lambda: view.history.count() == 1)
    assert "Pending offers 0 → 5" in view.history.item(0).text()
    assert len(view.chart.points) == 2
    view.close()
    assert calls == [("open", 3), ("close", 3)]
    assert 3 not in main_window.details


def test_installed_qt_bindings_keep_their_references(qapp: Any) -> None:
    from desktop.ui.compat import binding_problem

    assert binding_problem() is None

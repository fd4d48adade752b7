"""The alert router and the dashboard: one decision per event, by the user's settings."""

from __future__ import annotations

from desktop.client.alerts import AlertKind, AlertRouter, AlertSettings, WindowContext
from desktop.client.dashboard import Dashboard
from desktop.client.flashes import Flash
from pulse_core import messages
from pulse_core.protocol import Backoff
from pulse_core.stats import CampaignStats

from .conftest import make_campaign, make_event

FOCUSED = WindowContext(visible=True, focused=True)
AWAY = WindowContext(visible=True, focused=False)
HIDDEN = WindowContext(visible=False, focused=False)


def test_focused_window_gets_a_flash_only() -> None:
    router = AlertRouter(AlertSettings(desktop_notifications=True))
    decision = router.route(AlertKind.OFFERS_CREATED, Flash("x"), FOCUSED)
    assert decision.flash and not decision.notify and not decision.unread


def test_hidden_window_notifies_only_when_the_user_opted_in() -> None:
    flash = Flash("x")
    assert not AlertRouter().route(AlertKind.TARGET_POPULATED, flash, HIDDEN).notify
    assert AlertRouter().route(AlertKind.TARGET_POPULATED, flash, HIDDEN).unread
    opted_in = AlertRouter(AlertSettings(desktop_notifications=True))
    assert opted_in.route(AlertKind.TARGET_POPULATED, flash, AWAY).notify


def test_muted_or_deselected_kinds_stay_quiet_but_still_flash() -> None:
    flash = Flash("x")
    muted = AlertRouter(AlertSettings(desktop_notifications=True, sound=True, muted=True))
    decision = muted.route(AlertKind.OFFERS_CREATED, flash, HIDDEN)
    assert decision.flash and not decision.notify and decision.sound is None
    only_offers = AlertSettings(
        desktop_notifications=True, sound=True, kinds=frozenset({AlertKind.OFFERS_CREATED})
    )
    router = AlertRouter(only_offers)
    assert router.route(AlertKind.TARGET_POPULATED, flash, HIDDEN).sound is None
    assert router.route(AlertKind.OFFERS_CREATED, flash, HIDDEN).sound == "offers"


def test_no_tray_means_no_notification() -> None:
    router = AlertRouter(AlertSettings(desktop_notifications=True))
    no_tray = WindowContext(visible=False, focused=False, tray_available=False)
    assert not router.route(AlertKind.OFFERS_CREATED, Flash("x"), no_tray).notify


def test_dashboard_flashes_the_seed_messages_and_alerts_when_away() -> None:
    dashboard = Dashboard(router=AlertRouter(AlertSettings(desktop_notifications=True)))
    dashboard.store.replace_all([make_campaign(1, "Spring")])
    result = dashboard.apply(
        [
            make_event(1, 1, "target_populated", stats=CampaignStats(target_population=80)),
            make_event(1, 2, "offers_created", count=50, stats=CampaignStats(pending_offers=50)),
            make_event(1, 3, stats=CampaignStats(pending_offers=50), reason="offers_refreshed"),
        ],
        HIDDEN,
    )
    texts = [f.text for f in dashboard.flashes.recent]
    assert texts == [messages.TARGET_POPULATED, messages.offers_created(50)]
    assert [a.flash.text for a in result.alerts if a.decision.notify] == texts
    assert dashboard.store.get(1).stats.pending_offers == 50
    assert result.fetch == {1}  # target_populated may change the target's status


def test_refresh_finished_before_the_answer_still_tells_the_user() -> None:
    dashboard = Dashboard()
    dashboard.store.replace_all([make_campaign(1, "Spring")])
    done = make_event(1, 9, reason="offers_refreshed", created=0, request_id="abc")
    dashboard.apply([done], FOCUSED)
    dashboard.refresh_started(1, messages.refreshing_offers("Spring"), "abc")
    assert [f.text for f in dashboard.flashes.recent] == [
        messages.refreshing_offers("Spring"),
        messages.refresh_finished_nothing_new("Spring"),
    ]


def test_refresh_finished_after_the_answer_tells_the_user_once() -> None:
    dashboard = Dashboard()
    dashboard.store.replace_all([make_campaign(1, "Spring")])
    dashboard.refresh_started(1, messages.refreshing_offers("Spring"), "abc")
    done = make_event(1, 9, reason="offers_refreshed", created=0, request_id="abc")
    dashboard.apply([done], FOCUSED)
    dashboard.apply([done], FOCUSED)
    texts = [f.text for f in dashboard.flashes.recent]
    assert texts.count(messages.refresh_finished_nothing_new("Spring")) == 1


def test_someone_elses_refresh_is_silent() -> None:
    dashboard = Dashboard()
    dashboard.store.replace_all([make_campaign(1, "Spring")])
    dashboard.refresh_started(1, "Refreshing", "mine")
    dashboard.apply(
        [make_event(1, 2, reason="offers_refreshed", created=0, request_id="theirs")], FOCUSED
    )
    assert [f.text for f in dashboard.flashes.recent] == ["Refreshing"]


def test_backoff_grows_jittered_and_capped_then_resets() -> None:
    backoff = Backoff(initial=1, factor=2, maximum=8, jitter=0.5)
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 1

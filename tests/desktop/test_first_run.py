"""The first time an account's window opens, it offers alerts for launch results, once."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from desktop.ui.main_window import MainWindow
from desktop.ui.sounds import SilentPlayer
from tests.backend import ALICE, BOB


def open_window(qtbot: Any, bridge: Any, preferences: Any) -> MainWindow:
    window = MainWindow(bridge, preferences, sound_player=SilentPlayer("test"))
    qtbot.addWidget(window)
    window.show()
    return window


def test_alerts_are_offered_once_per_account_without_blocking_the_window(
    main_window: Any, qtbot: Any, preferences: Any, offline_bridge: Any
) -> None:
    offer = main_window.notification_offer
    assert offer is not None and offer.isVisible()  # a bar in the window, not a modal dialog
    assert not main_window.alert_settings.sound
    offer.sound.setChecked(True)
    offer.turn_on.click()
    assert not offer.isVisible()
    assert main_window.alert_settings.sound
    assert preferences.alert_settings(ALICE).sound  # saved with the account's alert settings

    again = open_window(qtbot, offline_bridge, preferences)
    assert again.notification_offer is None  # answered: never asked again
    again.shutdown()

    offline_bridge.session.user = replace(offline_bridge.user, email=BOB)
    bob = open_window(qtbot, offline_bridge, preferences)
    assert bob.notification_offer is not None and bob.notification_offer.isVisible()
    bob.notification_offer.not_now.click()
    assert preferences.notifications_offered(BOB)
    assert not preferences.alert_settings(BOB).sound
    bob.shutdown()


def test_a_preset_preference_skips_the_offer(
    qtbot: Any, preferences: Any, offline_bridge: Any
) -> None:
    preferences.set_notifications_offered(ALICE)  # as scripts/screenshot.py does
    window = open_window(qtbot, offline_bridge, preferences)
    assert window.notification_offer is None
    window.shutdown()

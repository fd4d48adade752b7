"""The desktop app against the real server and worker (the `live_backend` fixture)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from desktop.client.live import LinkState
from desktop.ui.app import DesktopApp
from desktop.ui.login_dialog import LoginDialog
from desktop.ui.preferences import Preferences
from pulse_core import messages
from pulse_core.protocol import Backoff
from pulse_core.stats import CampaignState, PopulationStatus
from tests.backend import ALICE, BOB, DEMO_PASSWORD, LiveBackend
from tests.netproxy import TcpProxy

SLOW = 20_000  # ms: worker jobs on a loaded CI machine


@pytest.fixture
def open_app(qtbot: Any, tmp_path: Path, qapp: Any) -> Iterator[Callable[..., DesktopApp]]:
    apps: list[DesktopApp] = []

    def open_app(url: str, email: str, password: str | None = DEMO_PASSWORD) -> DesktopApp:
        settings = QSettings(str(tmp_path / f"{email}.ini"), QSettings.Format.IniFormat)
        app = DesktopApp(
            Preferences(settings),
            quit_app_when_done=False,
            backoff=Backoff(initial=0.1, maximum=1.0),
        )
        apps.append(app)
        app.start(url, email, password)
        if password:
            qtbot.waitUntil(lambda: app.window is not None and app.window.loaded, timeout=SLOW)
            qtbot.waitUntil(lambda: app.window.live_seq is not None, timeout=SLOW)
        return app

    yield open_app
    for app in apps:
        app.quit()
        if app.window is not None:
            app.window.deleteLater()


def flashes(app: DesktopApp) -> list[str]:
    assert app.window is not None
    return [flash.text for flash in app.window.dashboard.flashes.recent]


def campaign_where(app: DesktopApp, state: CampaignState, status: PopulationStatus) -> Any:
    assert app.window is not None
    for campaign in app.window.store:
        if campaign.state is state and campaign.target.population_status is status:
            return campaign
    raise AssertionError(f"the demo data has no {state} campaign with a {status} target")


def test_second_user_sees_launch_flashes_and_offer_count_without_a_click(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    alice = open_app(live_backend.url, ALICE)
    bob = open_app(live_backend.url, BOB)
    assert alice.window.windowTitle() == "Campaign Pulse — Acme Outdoor"
    assert bob.window.windowTitle() == "Campaign Pulse — Acme Outdoor"
    campaign = campaign_where(alice, CampaignState.NOT_LAUNCHED, PopulationStatus.NOT_POPULATED)
    alice.window.select_campaign(campaign.id)
    assert alice.window.launch_action.isEnabled()
    alice.window.launch_action.trigger()
    alice.window.flows.dialog.confirm()  # Launch asks first (test_campaign_flows.py)
    qtbot.waitUntil(lambda: messages.LAUNCHED_POPULATING in flashes(alice), timeout=SLOW)

    def offers_flash() -> str | None:
        return next((t for t in flashes(bob) if t.endswith("offers created successfully")), None)

    qtbot.waitUntil(lambda: offers_flash() is not None, timeout=SLOW)
    texts = flashes(bob)
    assert texts.index(messages.TARGET_POPULATED) < texts.index(offers_flash())
    count = int(offers_flash().split()[0])
    assert count > 0
    qtbot.waitUntil(lambda: bob.window.store.get(campaign.id).stats.pending_offers == count)
    qtbot.waitUntil(lambda: bob.window.store.get(campaign.id).state is CampaignState.ACTIVE)
    # The row is fetched again after `target_populated`; the stats of `offers_created` may
    # land first, but the status must follow (it once stayed "populating").
    qtbot.waitUntil(
        lambda: (
            bob.window.store.get(campaign.id).target.population_status is PopulationStatus.POPULATED
        )
    )
    assert messages.LAUNCHED_POPULATING not in flashes(bob)  # bob did not click anything
    assert bob.bridge.session.live.topics == [bob.bridge.session.marketer_topic]
    assert texts.count(messages.TARGET_POPULATED) == 1  # one subscription, one flash


def test_refresh_offers_from_the_context_menu(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    alice = open_app(live_backend.url, ALICE)
    window = alice.window
    campaign = campaign_where(alice, CampaignState.ACTIVE, PopulationStatus.POPULATED)
    window.select_campaign(campaign.id)
    refresh = next(a for a in window.context_menu.actions() if a.text() == "&Refresh Offers")
    assert refresh.isEnabled()
    refresh.trigger()
    qtbot.waitUntil(
        lambda: messages.refreshing_offers(campaign.title) in flashes(alice), timeout=SLOW
    )
    nothing_new = messages.refresh_finished_nothing_new(campaign.title)
    qtbot.waitUntil(
        lambda: any(
            t == nothing_new or t.endswith("offers created successfully") for t in flashes(alice)
        ),
        timeout=SLOW,
    )
    # A second refresh right after finds nothing new, and says so.
    qtbot.waitUntil(refresh.isEnabled)
    refresh.trigger()
    qtbot.waitUntil(lambda: nothing_new in flashes(alice), timeout=SLOW)


def record_events_while_down(backend: LiveBackend, campaign_id: int, count: int) -> None:
    """Store events the way a worker does while no server is there to deliver them."""
    from pulse_data.database import Database
    from pulse_data.pubsub import campaign_transaction

    async def record() -> None:
        database = Database(backend.settings.effective_database_url)
        try:
            async with campaign_transaction(database, None) as events:
                events.broadcast_offers_created(campaign_id, count)
                events.broadcast_campaign_updated(campaign_id)
        finally:
            await database.dispose()

    thread = threading.Thread(target=lambda: asyncio.run(record()))
    thread.start()
    thread.join()


@pytest.mark.faults
def test_reconnects_after_a_server_restart_and_shows_what_it_missed(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    alice = open_app(live_backend.url, ALICE)
    window = alice.window
    campaign = campaign_where(alice, CampaignState.ACTIVE, PopulationStatus.POPULATED)
    live_backend.server.stop()
    qtbot.waitUntil(lambda: "Reconnecting" in window.connection_text, timeout=SLOW)
    record_events_while_down(live_backend, campaign.id, 7)
    live_backend.server.start()
    qtbot.waitUntil(lambda: messages.offers_created(7) in flashes(alice), timeout=SLOW)
    assert window._link.state is LinkState.CONNECTED
    assert "Connected" in window.connection_text


def test_detail_view_shows_history_and_grows_live(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    alice = open_app(live_backend.url, ALICE)
    window = alice.window
    campaign = campaign_where(alice, CampaignState.ACTIVE, PopulationStatus.POPULATED)
    view = window.open_campaign(campaign.id)
    topic = f"campaign:{campaign.id}"
    qtbot.waitUntil(lambda: topic in alice.bridge.session.live.topics)
    qtbot.waitUntil(lambda: view.history_status.text() != "Loading history…", timeout=SLOW)
    before = view.history.count()
    window.select_campaign(campaign.id)
    window.refresh_action.trigger()
    qtbot.waitUntil(
        lambda: any(
            "Offer refresh finished" in view.history.item(i).text()
            for i in range(before, view.history.count())
        ),
        timeout=SLOW,
    )
    view.close()
    qtbot.waitUntil(lambda: topic not in alice.bridge.session.live.topics)


def test_login_dialog_explains_a_wrong_password_and_then_signs_in(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    app = open_app(live_backend.url, ALICE, password=None)
    dialog = app.login_dialog
    assert isinstance(dialog, LoginDialog)
    dialog.password.setText("not-the-password")
    dialog.submit()
    qtbot.waitUntil(lambda: "Wrong email or password" in dialog.message.text(), timeout=SLOW)
    dialog.password.setText(DEMO_PASSWORD)
    dialog.submit()
    qtbot.waitUntil(lambda: app.window is not None and app.window.loaded, timeout=SLOW)
    assert app.preferences.email == ALICE
    assert app.preferences.server_url == live_backend.url


def test_expired_session_signs_in_again_with_the_known_password(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    alice = open_app(live_backend.url, ALICE)
    window = alice.window
    with qtbot.waitSignal(alice.bridge.campaignsLoaded, timeout=SLOW):  # signed in, reloaded
        alice.bridge.on_token_expired()  # as the live client reports a 4401 close
    assert alice.prompt is None and alice.window is window


def test_expired_session_asks_for_the_password_and_keeps_the_window(
    live_backend: LiveBackend, open_app: Callable[..., DesktopApp], qtbot: Any
) -> None:
    alice = open_app(live_backend.url, ALICE)
    window = alice.window
    alice._password = None  # nothing remembered: the user must be asked
    alice.bridge.on_token_expired()
    qtbot.waitUntil(lambda: alice.prompt is not None and alice.prompt.isVisible())
    prompt = alice.prompt
    prompt.password.setText("wrong")
    prompt.submit()
    qtbot.waitUntil(lambda: "Wrong email or password" in prompt.message.text(), timeout=SLOW)
    prompt.password.setText(DEMO_PASSWORD)
    with qtbot.waitSignal(alice.bridge.campaignsLoaded, timeout=SLOW):
        prompt.submit()
    assert alice.prompt is None and alice.window is window and window.isVisible()


@pytest.mark.faults
def test_a_dropped_network_keeps_the_grid_says_so_and_catches_up(
    live_backend: LiveBackend,
    network: TcpProxy,
    open_app: Callable[..., DesktopApp],
    qtbot: Any,
) -> None:
    alice = open_app(f"http://127.0.0.1:{network.port}", ALICE)
    window = alice.window
    shown = {campaign.id: campaign.title for campaign in window.store}
    campaign = campaign_where(alice, CampaignState.ACTIVE, PopulationStatus.POPULATED)
    network.cut()
    qtbot.waitUntil(lambda: "Reconnecting" in window.connection_text, timeout=SLOW)
    record_events_while_down(live_backend, campaign.id, 11)
    assert {c.id: c.title for c in window.store} == shown  # the grid keeps what it had
    network.restore()
    qtbot.waitUntil(lambda: messages.offers_created(11) in flashes(alice), timeout=SLOW)
    qtbot.waitUntil(lambda: "Connected" in window.connection_text, timeout=SLOW)
    assert {c.id: c.title for c in window.store} == shown


@pytest.mark.faults
def test_a_token_that_expired_while_offline_signs_in_again_and_catches_up(
    live_backend: LiveBackend,
    network: TcpProxy,
    open_app: Callable[..., DesktopApp],
    qtbot: Any,
) -> None:
    alice = open_app(f"http://127.0.0.1:{network.port}", ALICE)
    window = alice.window
    campaign = campaign_where(alice, CampaignState.ACTIVE, PopulationStatus.POPULATED)
    expired = live_backend.expired_token(ALICE)
    session = alice.bridge.session

    async def let_the_token_expire() -> None:
        assert session.live is not None
        session.rest.token = expired
        session.live.set_token(expired)

    network.cut()
    qtbot.waitUntil(lambda: "Reconnecting" in window.connection_text, timeout=SLOW)
    done = threading.Event()
    alice.bridge.call(let_the_token_expire(), lambda *_: done.set())
    qtbot.waitUntil(done.is_set)
    record_events_while_down(live_backend, campaign.id, 13)
    with qtbot.waitSignal(alice.bridge.tokenExpired, timeout=SLOW):  # the server refuses it
        network.restore()
    qtbot.waitUntil(lambda: messages.offers_created(13) in flashes(alice), timeout=SLOW)
    assert alice.prompt is None and alice.window is window  # signed in again, same window
    assert "Connected" in window.connection_text

"""Accounts and offline starts of the desktop app, against the real server (`live_backend`).

Each test is one computer: one settings file, one (in-memory) keyring and one cache directory
shared by the app instances it starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import keyring
import pytest
import shiboken6
from keyring.backend import KeyringBackend
from keyring.backends import null
from keyring.errors import PasswordDeleteError
from PySide6.QtCore import QSettings
from PySide6.QtGui import QPalette

from desktop.client import credentials
from desktop.client.accounts import Account, load_token
from desktop.client.rest import RestClient
from desktop.ui.app import DesktopApp
from desktop.ui.preferences import Preferences
from pulse_core.protocol import Backoff
from pulse_core.stats import CampaignState
from tests.backend import ALICE, BOB, CAROL, DEMO_PASSWORD, LiveBackend
from tests.netproxy import TcpProxy

SLOW = 20_000  # ms
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class MemoryKeyring(KeyringBackend):
    """A keyring that keeps secrets in a dict, for tests."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.secrets.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(null.Keyring())


class Computer:
    """Starts the app as a user would, again and again, on one computer."""

    def __init__(self, qtbot: Any, settings_file: Path) -> None:
        self.qtbot = qtbot
        self.settings_file = settings_file
        self.apps: list[DesktopApp] = []

    def start(self, url: str | None = None, email: str | None = None) -> DesktopApp:
        settings = QSettings(str(self.settings_file), QSettings.Format.IniFormat)
        app = DesktopApp(
            Preferences(settings), quit_app_when_done=False, backoff=Backoff(0.1, maximum=0.5)
        )
        self.apps.append(app)
        app.start(url, email, None)
        return app

    def sign_in(self, app: DesktopApp, email: str, password: str = DEMO_PASSWORD) -> None:
        """Through the login dialog, keeping the password in the keyring."""
        self.qtbot.waitUntil(lambda: app.login_dialog is not None and app.login_dialog.isVisible())
        dialog = app.login_dialog
        assert dialog is not None
        dialog.email.setText(email)
        dialog.password.setText(password)
        dialog.remember.setChecked(True)
        dialog.submit()
        self.wait_live(app, email)

    def wait_live(self, app: DesktopApp, email: str) -> None:
        def live() -> bool:
            window = app.window
            return (
                window is not None
                and window.user.email == email
                and window.loaded
                and window.live_seq is not None
            )

        self.qtbot.waitUntil(live, timeout=SLOW)

    def quit_all(self) -> None:
        for app in self.apps:
            app.quit()


@pytest.fixture
def computer(
    qtbot: Any, tmp_path: Path, qapp: Any, memory_keyring: MemoryKeyring
) -> Iterator[Computer]:
    machine = Computer(qtbot, tmp_path / "settings.ini")
    yield machine
    machine.quit_all()


def ids(app: DesktopApp) -> set[int]:
    assert app.window is not None
    return {campaign.id for campaign in app.window.store}


def test_offline_start_shows_the_saved_grid_dimmed_then_catches_up_by_itself(
    live_backend: LiveBackend,
    network: TcpProxy,
    computer: Computer,
    qtbot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"http://127.0.0.1:{network.port}"
    first = computer.start(url, ALICE)
    computer.sign_in(first, ALICE)
    assert first.window is not None
    shown = ids(first)
    active = next(c for c in first.window.store if c.state is CampaignState.ACTIVE)
    first.quit()  # the grid goes to disk
    network.cut()

    loads: list[str] = []
    fetch_all = RestClient.campaigns

    async def counted(self: RestClient) -> Any:
        loads.append(self.server_url)
        return await fetch_all(self)

    monkeypatch.setattr(RestClient, "campaigns", counted)
    second = computer.start()  # the last account, its password from the keyring
    qtbot.waitUntil(lambda: second.window is not None, timeout=SLOW)
    window = second.window
    assert window is not None and second.login_dialog is None
    assert ids(second) == shown and window.keeper.stale
    assert "Offline — data as of" in window.connection_text
    assert window.grid.stale_notice.isVisible()
    assert window.grid.stale_notice.text().startswith("Offline — data as of")
    table = window.grid.table.palette()
    disabled = table.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
    assert table.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text) == disabled
    resumed: list[bool] = []
    window.bridge.subscribed.connect(lambda _topic, _seq, again: resumed.append(again))

    with live_backend.client(BOB) as bob:  # meanwhile, on the server
        bob.post(f"/api/campaigns/{active.id}/pause").raise_for_status()
    network.restore()
    qtbot.waitUntil(lambda: window.store.get(active.id).state is CampaignState.PAUSED, timeout=SLOW)
    qtbot.waitUntil(lambda: not window.keeper.stale)
    assert "Offline" not in window.connection_text and not window.grid.stale_notice.isVisible()
    active_text = window.grid.table.palette().color(
        QPalette.ColorGroup.Active, QPalette.ColorRole.Text
    )
    assert active_text != disabled
    assert resumed == [True] and loads == []  # resumed from the saved seq: no full reload


def test_sign_out_ends_the_session_and_forgets_the_password(
    live_backend: LiveBackend, computer: Computer, qtbot: Any, memory_keyring: MemoryKeyring
) -> None:
    app = computer.start(live_backend.url, ALICE)
    computer.sign_in(app, ALICE)
    assert app.bridge is not None and app.bridge.user is not None
    token = app.bridge.user.token
    account = Account(live_backend.url, ALICE)
    assert credentials.load_password(live_backend.url, ALICE) == DEMO_PASSWORD
    assert load_token(account) == token
    app.window.account_menu.sign_out_action.trigger()
    qtbot.waitUntil(lambda: app.login_dialog is not None and app.login_dialog.isVisible())
    assert app.window is None
    assert memory_keyring.secrets == {}  # neither the password nor the token is kept
    assert app.login_dialog.email.text() == ALICE and app.login_dialog.password.text() == ""

    def refused() -> bool:
        me = httpx.get(f"{live_backend.url}/api/me", headers={"Authorization": f"Bearer {token}"})
        return me.status_code == 401

    qtbot.waitUntil(refused, timeout=SLOW)


def test_switching_accounts_shows_only_the_other_marketers_campaigns(
    live_backend: LiveBackend, computer: Computer, qtbot: Any
) -> None:
    app = computer.start(live_backend.url, ALICE)
    computer.sign_in(app, ALICE)
    alice_window = app.window
    assert alice_window is not None
    acme = ids(app)
    view = alice_window.open_campaign(next(iter(acme)))
    alice_bridge = app.bridge
    alice_window.account_menu.add_action.trigger()
    dialog = app.login_dialog
    assert dialog is not None and dialog.email.text() == "" and alice_window.isVisible()
    assert [dialog.accounts.itemText(n) for n in range(dialog.accounts.count())] == [
        f"Acme Outdoor ({ALICE})",
        "Another account…",
    ]
    computer.sign_in(app, CAROL)
    carol_window = app.window
    assert carol_window is not None and carol_window is not alice_window
    globex = ids(app)
    assert globex and not globex & acme
    assert alice_bridge is not None and alice_bridge.session._live_task is not None
    assert alice_bridge.session._live_task.done()  # its WebSocket is closed
    assert not shiboken6.isValid(view) or not view.isVisible()
    assert "Globex" in carol_window.windowTitle()

    menu = carol_window.account_menu
    menu.rebuild()
    entries = {a.data().email: a for a in menu.account_actions()}
    assert set(entries) == {ALICE, CAROL} and entries[CAROL].isChecked()
    assert menu.menu.menuAction() in carol_window.tray.menu.actions()  # also in the tray
    entries[ALICE].trigger()  # the keyring has alice's password: no dialog
    computer.wait_live(app, ALICE)
    assert app.login_dialog is None and ids(app) == acme
    assert not shiboken6.isValid(carol_window) or not carol_window.isVisible()


def test_a_session_ended_elsewhere_brings_back_the_login_dialog_with_the_reason(
    live_backend: LiveBackend, computer: Computer, qtbot: Any
) -> None:
    app = computer.start(live_backend.url, ALICE)
    computer.sign_in(app, ALICE)
    assert app.bridge is not None and app.bridge.user is not None
    token = app.bridge.user.token
    httpx.post(
        f"{live_backend.url}/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
    ).raise_for_status()  # as if from another computer with the same session
    qtbot.waitUntil(lambda: app.login_dialog is not None, timeout=SLOW)
    dialog = app.login_dialog
    assert app.window is None and dialog.isVisible()
    assert dialog.message.text().startswith("Your session ended: signed out elsewhere")
    assert dialog.email.text() == ALICE and dialog.password.text() == DEMO_PASSWORD  # one click

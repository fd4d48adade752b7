"""The desktop app's lifecycle: sign in, open the window, sign in again, shut down cleanly."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QApplication, QWidget

from desktop.client import accounts, credentials
from desktop.client.accounts import Account
from desktop.client.errors import AuthError, ClientError, UnreachableError
from desktop.client.grid_cache import GridCache
from desktop.client.models import UserSession
from desktop.client.rest import normalize_server_url
from desktop.ui.bridge import ClientBridge, Done
from desktop.ui.compat import binding_problem
from desktop.ui.login_dialog import LoginDialog, PasswordPrompt
from desktop.ui.main_window import APP_NAME, MainWindow
from desktop.ui.preferences import Preferences
from desktop.ui.resources import app_icon
from desktop.ui.runner import AsyncRunner
from desktop.ui.theme import apply_theme

log = logging.getLogger(__name__)
OFFLINE_AFTER_MS = 5000  # a sign-in unanswered this long opens the saved grid meanwhile


class DesktopApp(QObject):
    """Owns the network thread, the signed-in account's session bridge and its window.

    One account at a time: switching or signing out closes the window and its session
    (detail views, WebSocket) before the next account's opens.
    """

    signedIn = Signal(object)  # MainWindow
    finished = Signal()

    def __init__(
        self,
        preferences: Preferences,
        *,
        quit_app_when_done: bool = True,
        cache: GridCache | None = None,
        **live_options: Any,
    ) -> None:
        super().__init__()
        self.preferences = preferences
        self.quit_app_when_done = quit_app_when_done
        self.cache = cache or GridCache()
        self.live_options = live_options
        self.runner = AsyncRunner()
        self.runner.start_loop()
        self.bridge: ClientBridge | None = None  # the open window's
        self.window: MainWindow | None = None
        self.login_dialog: LoginDialog | None = None
        self.prompt: PasswordPrompt | None = None
        self._login_bridge: ClientBridge | None = None  # the login dialog's, until signed in
        self._leaving: set[ClientBridge] = set()  # signing out: waiting for the server
        self._password: str | None = None  # only to sign in again after the token expires
        self._previous: Account | None = None  # to go back to if switching is cancelled
        self._closed = False

    @property
    def account(self) -> Account | None:
        """The account of the open window."""
        if self.bridge is None or self.bridge.user is None:
            return None
        user = self.bridge.user
        return Account(self.bridge.server_url, user.email, user.marketer_name or "")

    # ---- signing in ---------------------------------------------------------------------

    def start(
        self, server_url: str | None = None, email: str | None = None, password: str | None = None
    ) -> None:
        """Sign in as the account: with the given password, else with the one the keyring
        keeps, else show the login dialog (prefilled). While the server cannot be reached,
        an account with a saved grid and a kept token or password opens offline."""
        server_url = server_url or self.preferences.server_url
        email = email or self.preferences.email
        try:
            server_url = normalize_server_url(server_url)
        except ClientError as exc:
            self.show_login(server_url, email, exc.message)
            return
        account = Account(server_url, email)
        if not email:
            self.show_login(server_url, email)
            return
        password = password or credentials.load_password(server_url, email)
        token = accounts.load_token(account)
        if not password:
            if not (token and self._open_saved(account, token)):
                self.show_login(server_url, email)
            return
        self._password = password
        bridge = self._new_bridge(server_url)
        state = {"waiting": True, "offline": False}

        def go_offline() -> None:
            """The server does not answer: open the saved grid, if there is one."""
            if not state["offline"] and self.window is None:
                state["offline"] = self._open_saved(account, token, bridge)

        def still_waiting() -> None:
            if state["waiting"]:
                go_offline()

        def done(user: Any, error: BaseException | None) -> None:
            state["waiting"] = False
            if state["offline"]:  # the saved grid is up: a new token is all this brings
                if error is None:
                    self._token_renewed(bridge)
                return
            if error is None:
                self._signed_in(bridge, user)
                return
            if isinstance(error, UnreachableError):
                go_offline()
                if state["offline"]:
                    log.info("%s: the server cannot be reached; showing the saved grid", email)
                    return
            self._discard(bridge)
            self.show_login(server_url, email, _message(error))

        bridge.login(email, password, done)
        QTimer.singleShot(OFFLINE_AFTER_MS, self, still_waiting)  # a server that never answers

    def login(self, server_url: str, email: str, password: str, done: Done) -> None:
        """The login dialog's sign-in: a session of its own until it succeeds."""
        try:
            server_url = normalize_server_url(server_url)
        except ClientError as exc:
            done(None, exc)
            return
        bridge = self._login_bridge
        if bridge is None or bridge.server_url != server_url:
            if bridge is not None:
                self._discard(bridge)
            bridge = self._login_bridge = self._new_bridge(server_url)
        bridge.login(email, password, done)

    def show_login(
        self, server_url: str | None = None, email: str | None = None, error: str | None = None
    ) -> LoginDialog:
        if self.login_dialog is not None:
            self.login_dialog.hide()
            self.login_dialog.deleteLater()
        dialog = LoginDialog(
            self.preferences, self.login, server_url=server_url, email=email, error=error
        )
        dialog.setWindowIcon(app_icon())
        self.login_dialog = dialog
        dialog.accepted.connect(lambda: self._dialog_signed_in(dialog))
        dialog.rejected.connect(lambda: self._login_cancelled(dialog))
        dialog.show()
        return dialog

    def _dialog_signed_in(self, dialog: LoginDialog) -> None:
        bridge, self._login_bridge = self._login_bridge, None
        if dialog is self.login_dialog:
            self.login_dialog = None
        dialog.deleteLater()
        assert bridge is not None
        self._password = dialog.password_used if dialog.remember.isChecked() else None
        self._close_window()  # Add Account…: the old account's window goes now
        self._signed_in(bridge, dialog.user)

    def _login_cancelled(self, dialog: LoginDialog) -> None:
        if dialog is not self.login_dialog:
            return
        self.login_dialog = None
        dialog.deleteLater()
        if self._login_bridge is not None:
            self._discard(self._login_bridge)
            self._login_bridge = None
        if self.window is not None:
            return  # Add Account… cancelled: the open window stays
        previous, self._previous = self._previous, None
        if previous is not None:
            self.start(previous.server_url, previous.email)
        else:
            self.quit()

    def _new_bridge(self, server_url: str) -> ClientBridge:
        return ClientBridge(self.runner, server_url, self, **self.live_options)

    def _signed_in(self, bridge: ClientBridge, user: UserSession | None) -> None:
        assert user is not None
        # The campaigns are asked for first: the server prepares them while this thread builds
        # the window (what the bridge brings back is posted to this thread, so it reaches the
        # window once it is built and connected).
        bridge.start(self._started)
        account = self._remember(bridge, user)
        if self.preferences.remember_password:
            accounts.save_token(account, user.token)
        window = self._open_window(bridge)
        self.signedIn.emit(window)

    def _open_saved(
        self, account: Account, token: str | None, bridge: ClientBridge | None = None
    ) -> bool:
        """Open the account's saved grid, stale, and resume from its seq; False if none."""
        if self._closed:
            return False
        saved = self.cache.load(account.server_url, account.email)
        if saved is None:
            return False
        bridge = bridge or self._new_bridge(account.server_url)
        bridge.restore(replace(saved.user, token=token or ""))
        window = self._open_window(bridge)
        window.keeper.show_cached(saved)
        bridge.start(self._started, after=saved.seq)
        self.signedIn.emit(window)
        return True

    def _token_renewed(self, bridge: ClientBridge) -> None:
        """Signed in again behind a saved grid's window: keep the token it resumes with."""
        if bridge is self.bridge and bridge.user is not None:
            account = self._remember(bridge, bridge.user)
            if self.preferences.remember_password:
                accounts.save_token(account, bridge.user.token)

    def _remember(self, bridge: ClientBridge, user: UserSession) -> Account:
        """The account goes first in the list, and is the one to start with next time."""
        account = Account(bridge.server_url, user.email, user.marketer_name or "")
        self.preferences.accounts = self.preferences.accounts.used(account)
        self.preferences.server_url = account.server_url
        self.preferences.email = account.email
        self.preferences.sync()
        return account

    def _open_window(self, bridge: ClientBridge) -> MainWindow:
        self.bridge = bridge
        self._previous = None
        window = MainWindow(bridge, self.preferences, cache=self.cache)
        window.quitRequested.connect(self.quit)
        window.passwordNeeded.connect(self.ask_password)
        bridge.sessionEnded.connect(lambda message: self._session_ended(bridge, message))
        menu = window.account_menu
        menu.switchRequested.connect(self.switch_to)
        menu.addRequested.connect(self.add_account)
        menu.signOutRequested.connect(self.sign_out)
        self.window = window
        window.show()
        return window

    def _started(self, _result: Any, error: BaseException | None) -> None:
        if error is not None and self.window is not None and not isinstance(error, AuthError):
            self.window.dashboard.failed(f"Could not load your campaigns: {_message(error)}")

    # ---- accounts -----------------------------------------------------------------------

    def switch_to(self, account: Account) -> None:
        """Close this account's window and session, then open `account`'s."""
        self._previous = self.account
        self._close_window()
        self.start(account.server_url, account.email)

    def add_account(self) -> None:
        """The login dialog for another account; this window stays until it signs in."""
        current = self.account
        dialog = self.show_login(current.server_url if current else None)
        dialog.email.clear()
        dialog.password.clear()
        dialog.email.setFocus()

    def sign_out(self) -> None:
        """End the session on the server, forget what this computer keeps of the account
        (password, token, saved grid), and show the login dialog."""
        account, bridge = self.account, self.bridge
        if account is None or bridge is None:
            return
        credentials.forget_password(account.server_url, account.email)
        accounts.forget_token(account)
        self._password = None
        self._close_window(keep_session=True)
        self.cache.remove(account.server_url, account.email)  # after its last write
        self._leaving.add(bridge)
        bridge.logout(lambda *_: self._discard(bridge))
        self.show_login(account.server_url, account.email)

    def _session_ended(self, bridge: ClientBridge, message: str) -> None:
        """Signed out elsewhere, password changed, disabled: back to the login dialog."""
        if bridge is not self.bridge:
            return
        account = self.account
        assert account is not None
        log.info("session of %s ended: %s", account.email, message)
        accounts.forget_token(account)
        self._password = None
        self._close_window()
        self.show_login(account.server_url, account.email, message)

    def _close_window(self, *, keep_session: bool = False) -> None:
        """Close the window (its detail views, its last grid write) and its session."""
        window, bridge = self.window, self.bridge
        self.window = self.bridge = None
        if self.prompt is not None:
            self.prompt.reject()
            self.prompt = None
        if window is not None:
            window.shutdown()
            window.hide()
            window.deleteLater()
        if bridge is not None and not keep_session:
            self._discard(bridge)

    def _discard(self, bridge: ClientBridge) -> None:
        self._leaving.discard(bridge)
        bridge.close()
        bridge.deleteLater()

    # ---- the token expired --------------------------------------------------------------

    def ask_password(self) -> None:
        """Sign in again, with a known password first, else by asking; the window stays."""
        bridge = self.bridge
        if self.prompt is not None or bridge is None or bridge.user is None:
            return
        email = bridge.user.email
        if self._password is None and self.preferences.remember_password:
            self._password = credentials.load_password(bridge.server_url, email)
        if self._password:
            password, self._password = self._password, None

            def done(_user: Any, error: BaseException | None) -> None:
                if bridge is not self.bridge:
                    return
                if error is None:
                    self._password = password
                    self._resumed()
                else:
                    self.ask_password()

            bridge.login(email, password, done)
            return
        self.prompt = PasswordPrompt(email, bridge.login, self.window)
        self.prompt.accepted.connect(self._resumed)
        self.prompt.finished.connect(self._prompt_closed)
        self.prompt.open()

    def _prompt_closed(self, _result: int) -> None:
        self.prompt = None

    def _resumed(self) -> None:
        """Signed in again: keep the new token; reload unless resuming a saved grid (its
        missed events are on their way)."""
        if self.bridge is None or self.bridge.user is None:
            return
        account = self.account
        if account is not None and self.preferences.remember_password:
            accounts.save_token(account, self.bridge.user.token)
        if self.window is None or not self.window.keeper.stale:
            self.bridge.reload()

    # ---- the end ------------------------------------------------------------------------

    def quit(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.window is not None:
            self.window.shutdown()
            self.window.hide()
        if self.login_dialog is not None:
            self.login_dialog.hide()
        for bridge in (self.bridge, self._login_bridge, *self._leaving):
            if bridge is not None:
                bridge.close()
        self.runner.stop()
        self.finished.emit()
        if self.quit_app_when_done:
            QApplication.quit()


def _quit_once_a_window_shows(
    app: QApplication, controller: DesktopApp, *, expect_main: bool, timeout_s: float = 60
) -> None:
    """Quit once the main window has its grid, or (unless `expect_main`) the login dialog
    shows: a password kept in the keyring may sign in without one given."""
    started = time.monotonic()
    poll = QTimer(app)

    def look() -> None:
        window: QWidget | None = controller.window
        if not (controller.window is not None and controller.window.loaded):
            window = None if expect_main else controller.login_dialog
        if window is not None and window.isVisible():
            print(f"started: {window.windowTitle()}", flush=True)
            poll.stop()
            app.exit(0)
        elif time.monotonic() - started > timeout_s:
            print("no window appeared", file=sys.stderr, flush=True)
            poll.stop()
            app.exit(1)

    poll.timeout.connect(look)
    poll.start(100)


def _message(error: BaseException) -> str:
    return error.message if isinstance(error, ClientError) else str(error) or type(error).__name__


def run_app(
    server_url: str | None, email: str | None, password: str | None, *, check: bool = False
) -> int:
    """Start Qt, sign in (dialog unless a password is given) and run until the user quits.

    With `check`, quit as soon as the first window is up and print its title: the smoke test
    of an installed or packaged app.
    """
    problem = binding_problem()
    if problem:
        print(f"campaign-pulse: {problem}", file=sys.stderr)
        return 1
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("campaign-pulse")
    app.setOrganizationName("Campaign Pulse")
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("campaign-pulse")
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)
    preferences = Preferences(QSettings())
    apply_theme(preferences.theme, app)
    controller = DesktopApp(preferences)
    controller.start(server_url, email, password)
    if check:
        _quit_once_a_window_shows(app, controller, expect_main=bool(password))
    try:
        return app.exec()
    finally:
        controller.quit()

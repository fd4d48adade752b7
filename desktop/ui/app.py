"""The desktop app's lifecycle: sign in, open the window, sign in again, shut down cleanly."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QApplication

from desktop.client import credentials
from desktop.client.errors import AuthError, ClientError
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


class DesktopApp(QObject):
    """Owns the network thread, the session bridge and the main window."""

    signedIn = Signal(object)  # MainWindow
    finished = Signal()

    def __init__(
        self,
        preferences: Preferences,
        *,
        quit_app_when_done: bool = True,
        **live_options: Any,
    ) -> None:
        super().__init__()
        self.preferences = preferences
        self.quit_app_when_done = quit_app_when_done
        self.live_options = live_options
        self.runner = AsyncRunner()
        self.runner.start_loop()
        self.bridge: ClientBridge | None = None
        self.window: MainWindow | None = None
        self.login_dialog: LoginDialog | None = None
        self.prompt: PasswordPrompt | None = None
        self._password: str | None = None  # only to sign in again after the token expires
        self._closed = False

    # ---- signing in ---------------------------------------------------------------------

    def start(
        self, server_url: str | None = None, email: str | None = None, password: str | None = None
    ) -> None:
        """Sign in with the given password, or show the login dialog (prefilled)."""
        server_url = server_url or self.preferences.server_url
        email = email or self.preferences.email
        if password and email:
            self._password = password

            def done(user: Any, error: BaseException | None) -> None:
                if error is None:
                    self._signed_in(user)
                else:
                    self.show_login(server_url, email, _message(error))

            self.login(server_url, email, password, done)
        else:
            self.show_login(server_url, email)

    def login(self, server_url: str, email: str, password: str, done: Done) -> None:
        """Sign in against `server_url`, making a new session when the server changed."""
        try:
            server_url = normalize_server_url(server_url)
        except ClientError as exc:
            done(None, exc)
            return
        if self.bridge is None or self.bridge.server_url != server_url:
            if self.bridge is not None:
                self.bridge.close()
                self.bridge.deleteLater()
            self.bridge = ClientBridge(self.runner, server_url, self, **self.live_options)
        self.bridge.login(email, password, done)

    def show_login(
        self, server_url: str | None = None, email: str | None = None, error: str | None = None
    ) -> LoginDialog:
        dialog = LoginDialog(
            self.preferences, self.login, server_url=server_url, email=email, error=error
        )
        dialog.setWindowIcon(app_icon())
        self.login_dialog = dialog
        dialog.accepted.connect(lambda: self._dialog_signed_in(dialog))
        dialog.rejected.connect(self.quit)
        dialog.show()
        return dialog

    def _dialog_signed_in(self, dialog: LoginDialog) -> None:
        if dialog.remember.isChecked():
            self._password = dialog.password_used
        self.login_dialog = None
        self._signed_in(dialog.user)

    def _signed_in(self, user: UserSession | None) -> None:
        assert self.bridge is not None and user is not None
        if self.window is None:
            window = MainWindow(self.bridge, self.preferences)
            window.quitRequested.connect(self.quit)
            window.passwordNeeded.connect(self.ask_password)
            self.window = window
            window.show()
            self.bridge.start(self._started)
            self.signedIn.emit(window)

    def _started(self, _result: Any, error: BaseException | None) -> None:
        if error is not None and self.window is not None and not isinstance(error, AuthError):
            self.window.dashboard.failed(f"Could not load your campaigns: {_message(error)}")

    # ---- the token expired --------------------------------------------------------------

    def ask_password(self) -> None:
        """Sign in again, with a known password first, else by asking; the window stays."""
        if self.prompt is not None or self.bridge is None or self.bridge.user is None:
            return
        email = self.bridge.user.email
        if self._password is None and self.preferences.remember_password:
            self._password = credentials.load_password(self.bridge.server_url, email)
        if self._password:
            password, self._password = self._password, None

            def done(_user: Any, error: BaseException | None) -> None:
                if error is None:
                    self._password = password
                    self._resumed()
                else:
                    self.ask_password()

            self.bridge.login(email, password, done)
            return
        self.prompt = PasswordPrompt(email, self.bridge.login, self.window)
        self.prompt.accepted.connect(self._resumed)
        self.prompt.finished.connect(self._prompt_closed)
        self.prompt.open()

    def _prompt_closed(self, _result: int) -> None:
        self.prompt = None

    def _resumed(self) -> None:
        if self.bridge is not None:
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
        if self.bridge is not None:
            self.bridge.close()
        self.runner.stop()
        self.finished.emit()
        if self.quit_app_when_done:
            QApplication.quit()


def _quit_once_a_window_shows(
    app: QApplication, controller: DesktopApp, *, expect_main: bool, timeout_s: float = 60
) -> None:
    started = time.monotonic()
    poll = QTimer(app)

    def look() -> None:
        window = controller.window if expect_main else controller.login_dialog
        if window is not None and window.isVisible():
            if not expect_main or (controller.window and controller.window.loaded):
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

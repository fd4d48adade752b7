"""The sign-in dialog: server, email and password, with messages that say what to do next."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from desktop.client import credentials
from desktop.client.accounts import Account
from desktop.client.errors import ClientError
from desktop.client.models import UserSession
from desktop.client.rest import normalize_server_url
from desktop.ui.preferences import Preferences
from desktop.ui.theme import error_color

# login(server_url, email, password, done(user, error)) — done runs in the GUI thread.
LoginFunction = Callable[[str, str, str, Callable[[Any, BaseException | None], None]], None]


class LoginDialog(QDialog):
    """Asks for the server, email and password; signs in without freezing the window."""

    def __init__(
        self,
        preferences: Preferences,
        login: LoginFunction,
        *,
        server_url: str | None = None,
        email: str | None = None,
        error: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sign in — Campaign Pulse")
        self.preferences = preferences
        self._login = login
        self.user: UserSession | None = None
        self.password_used = ""
        self.server = QLineEdit(server_url or preferences.server_url)
        self.server.setPlaceholderText("http://127.0.0.1:8765")
        self.server.setAccessibleName("Server address")
        self.email = QLineEdit(email or preferences.email)
        self.email.setPlaceholderText("you@company.example")
        self.email.setAccessibleName("Email")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Password")
        self.remember = QCheckBox("Remember password in the system keyring")
        if credentials.available():
            self.remember.setChecked(preferences.remember_password)
            remembered = credentials.load_password(self.server.text(), self.email.text())
            if remembered and self.remember.isChecked():
                self.password.setText(remembered)
        else:
            self.remember.setEnabled(False)
            self.remember.setToolTip("No system keyring is available; the password is not stored.")
        self.message = QLabel()
        self.message.setObjectName("loginMessage")
        self.message.setAccessibleName("Sign-in message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout()
        self.accounts = QComboBox()  # the accounts signed in to before, to pick from
        self.accounts.setAccessibleName("Known accounts")
        known = preferences.accounts
        for account in known:
            self.accounts.addItem(account.label(with_server=known.several_servers), account)
        self.accounts.addItem("Another account…", None)
        self.accounts.setCurrentIndex(self._known_index())
        self.accounts.activated.connect(self._account_chosen)
        if len(known):
            form.addRow("&Account", self.accounts)
        form.addRow("&Server", self.server)
        form.addRow("&Email", self.email)
        form.addRow("&Password", self.password)
        form.addRow("", self.remember)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.sign_in_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.sign_in_button.setText("Sign in")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(420)
        if error:
            self.show_error(error)
        (self.password if self.email.text() else self.email).setFocus()

    def _known_index(self) -> int:
        """The entry of the account in the fields, else "Another account…"."""
        probe = Account(self.server.text().strip().rstrip("/"), self.email.text().strip())
        for index in range(self.accounts.count() - 1):
            if probe.same(self.accounts.itemData(index)):
                return index
        return self.accounts.count() - 1

    def _account_chosen(self, index: int) -> None:
        account = self.accounts.itemData(index)
        self.server.setText(account.server_url if account else self.server.text())
        self.email.setText(account.email if account else "")
        remembered = (
            credentials.load_password(account.server_url, account.email) if account else None
        )
        self.password.setText(remembered or "")
        (self.password if account else self.email).setFocus()

    def show_error(self, text: str) -> None:
        self.message.setStyleSheet(f"color: {error_color().name()};")
        self.message.setText(text)

    def _busy(self, busy: bool) -> None:
        for widget in (self.server, self.email, self.password, self.remember, self.sign_in_button):
            widget.setEnabled(not busy and (widget is not self.remember or credentials.available()))

    def submit(self) -> None:
        server, email, password = (
            self.server.text(),
            self.email.text().strip(),
            self.password.text(),
        )
        try:
            server = normalize_server_url(server)
        except ClientError as exc:
            self.show_error(exc.message)
            return
        if not email or not password:
            self.show_error("Enter your email and password.")
            return
        self.message.setStyleSheet("")
        self.message.setText(f"Signing in to {server}…")
        self._busy(True)
        self.password_used = password
        self._login(server, email, password, self._done)

    def _done(self, user: Any, error: BaseException | None) -> None:
        self._busy(False)
        if error is not None:
            text = error.message if isinstance(error, ClientError) else str(error)
            self.show_error(text or "Signing in failed. Try again.")
            self.password.selectAll()
            self.password.setFocus()
            return
        self.user = user
        server = normalize_server_url(self.server.text())
        email = self.email.text().strip()
        self.preferences.server_url = server
        self.preferences.email = email
        self.preferences.remember_password = self.remember.isChecked()
        if self.remember.isChecked():
            credentials.save_password(server, email, self.password_used)
        elif credentials.available():
            credentials.forget_password(server, email)
        self.preferences.sync()
        self.accept()


class PasswordPrompt(QDialog):
    """Asks for the password again after the session expired, keeping the window open."""

    def __init__(self, email: str, login: Callable[..., None], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Session expired — Campaign Pulse")
        self._login = login
        self.email = email
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName(f"Password for {email}")
        self.message = QLabel(
            f"Your session has expired. Enter the password for {email} to keep receiving "
            "live updates. Nothing on screen is lost."
        )
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Sign in")
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.password)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(380)

    def submit(self) -> None:
        if not self.password.text():
            return
        self.buttons.setEnabled(False)
        self._login(self.email, self.password.text(), self._done)

    def _done(self, user: Any, error: BaseException | None) -> None:
        self.buttons.setEnabled(True)
        if error is not None:
            text = error.message if isinstance(error, ClientError) else str(error)
            self.message.setText(text)
            self.message.setStyleSheet(f"color: {error_color().name()};")
            self.password.selectAll()
            return
        self.accept()

"""File → Switch Account ▸ (the known accounts, Add Account…) and File → Sign Out.

The same submenu goes into the tray's menu. What the choices do is up to the app, which
listens to the signals.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from desktop.client.accounts import Account
from desktop.ui.preferences import Preferences
from desktop.ui.tray import Tray


class AccountMenu(QObject):
    """The account choices of one window, whose account is `current`."""

    switchRequested = Signal(object)  # Account
    addRequested = Signal()
    signOutRequested = Signal()

    def __init__(
        self, preferences: Preferences, current: Account, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.preferences = preferences
        self.current = current
        self.menu = QMenu("Switch &Account")
        self.menu.setAccessibleName("Switch account")
        self.menu.aboutToShow.connect(self.rebuild)
        self.add_action = QAction("&Add Account…", self)
        self.add_action.triggered.connect(self.addRequested)
        self.sign_out_action = QAction(f"Sign &Out {current.email}", self)
        self.sign_out_action.triggered.connect(self.signOutRequested)
        self.rebuild()

    def rebuild(self) -> None:
        """One entry per known account (this one checked), then Add Account…."""
        self.menu.clear()
        accounts = self.preferences.accounts
        if accounts.find(self.current.server_url, self.current.email) is None:
            accounts = accounts.used(self.current)
        with_server = accounts.several_servers
        for account in accounts:
            action = self.menu.addAction(account.label(with_server=with_server))
            action.setCheckable(True)
            action.setChecked(account.same(self.current))
            action.setData(account)
            action.triggered.connect(lambda _checked=False, a=account: self._chosen(a))
        self.menu.addSeparator()
        self.menu.addAction(self.add_action)

    def account_actions(self) -> list[QAction]:
        return [a for a in self.menu.actions() if isinstance(a.data(), Account)]

    def _chosen(self, account: Account) -> None:
        if account.same(self.current):
            self.rebuild()  # keep the check on the current account
            return
        self.switchRequested.emit(account)

    def install(self, file_menu: QMenu) -> None:
        """Add Switch Account ▸ and Sign Out to the end of `file_menu`."""
        file_menu.addMenu(self.menu)
        file_menu.addAction(self.sign_out_action)

    def install_in_tray(self, tray: Tray) -> None:
        """Add Switch Account ▸ to the tray's menu, just above Quit."""
        tray.menu.insertMenu(tray.quit_action, self.menu)

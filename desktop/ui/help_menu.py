"""The Help menu: Keyboard Shortcuts, Open Log Folder and About, for one main window."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QWidget

from desktop.client.live import LinkStatus
from desktop.logs import log_file
from desktop.ui.about_dialog import AboutDialog, open_folder
from desktop.ui.bridge import ClientBridge
from desktop.ui.shortcuts_dialog import ShortcutsDialog


def menu_named(menu_bar: QMenuBar, title: str) -> QMenu:
    """The menu bar's menu called `title` ("&View"), added at the end if it has none."""
    for action in menu_bar.actions():
        menu = action.menu()
        if isinstance(menu, QMenu) and menu.title() == title:
            return menu
    return menu_bar.addMenu(title)


class HelpMenu(QObject):
    """Its actions and the (non-modal) dialogs they open."""

    def __init__(
        self, window: QWidget, bridge: ClientBridge, link_status: Callable[[], LinkStatus]
    ) -> None:
        super().__init__(window)
        self.window = window
        self.bridge = bridge
        self.link_status = link_status
        self.about: AboutDialog | None = None
        self.shortcuts_action = QAction("&Keyboard Shortcuts", self)
        self.shortcuts_action.setShortcut(QKeySequence("Ctrl+/"))
        self.shortcuts_action.triggered.connect(self.show_shortcuts)
        self.log_action = QAction("Open &Log Folder", self)
        self.log_action.triggered.connect(lambda: open_folder(log_file().parent))
        self.about_action = QAction("&About Campaign Pulse", self)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        self.about_action.triggered.connect(self.show_about)

    def add_to(self, menu_bar: QMenuBar) -> None:
        menu = menu_bar.addMenu("&Help")
        menu.addAction(self.shortcuts_action)
        menu.addAction(self.log_action)
        menu.addSeparator()
        menu.addAction(self.about_action)

    def show_about(self) -> AboutDialog:
        if self.about is None:
            self.about = AboutDialog(self.bridge, self.link_status(), parent=self.window)
            self.about.finished.connect(self._about_closed)
        self.about.show()
        self.about.raise_()
        return self.about

    def _about_closed(self, _result: int) -> None:
        if self.about is not None:
            self.about.deleteLater()
            self.about = None

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.window)
        dialog.finished.connect(dialog.deleteLater)
        dialog.show()
        return dialog

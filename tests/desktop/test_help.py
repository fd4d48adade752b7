"""Help → About and Keyboard Shortcuts, and the log file that support asks for."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication

from desktop.client.live import LinkState, LinkStatus
from desktop.logs import log_file, setup_logging, teardown_logging
from desktop.ui.shortcuts_dialog import shortcut_rows
from pulse_core import version as app_version
from tests.backend import ALICE

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


class FileOpener(QObject):
    """Stands in for the file manager: records the folders the app asks to show."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url.toLocalFile())


@pytest.fixture
def log_to(tmp_path: Path) -> Iterator[Path]:
    path = setup_logging(tmp_path / "log", "INFO")
    yield path
    teardown_logging()


def test_about_shows_version_server_account_live_state_and_the_log_folder(
    main_window: Any, qtbot: Any, log_to: Path
) -> None:
    opener = FileOpener()
    QDesktopServices.setUrlHandler("file", opener, "open")
    try:
        main_window.help_menu.about_action.trigger()
        about = main_window.help_menu.about
        assert about is not None and about.isVisible()
        assert about.text("Version") == app_version() != "0+unknown"
        assert about.text("Server") == "http://127.0.0.1:9"
        assert ALICE in about.text("Signed in as")
        assert about.text("Log folder") == str(log_to.parent)
        bridge = main_window.bridge
        bridge.runner.call_soon(lambda: bridge.on_status(LinkStatus(LinkState.CONNECTED)))
        qtbot.waitUntil(lambda: about.text("Connection") == "Live")
        bridge.runner.call_soon(
            lambda: bridge.on_status(LinkStatus(LinkState.RECONNECTING, 2.0, 1, "lost"))
        )
        qtbot.waitUntil(lambda: about.text("Connection") == "Reconnecting… — lost")

        about.copy_button.click()
        copied = QGuiApplication.clipboard().text()
        assert f"Version: {app_version()}" in copied
        assert "Server: http://127.0.0.1:9" in copied
        about.open_log_button.click()
        assert opener.opened == [str(log_to.parent)]
    finally:
        QDesktopServices.unsetUrlHandler("file")

    logging.getLogger("desktop.test").info("a line for support")
    assert log_file() == log_to
    assert "INFO desktop.test [MainThread]: a line for support" in log_to.read_text()


def test_the_log_keeps_uncaught_exceptions_and_no_tokens_or_passwords(log_to: Path) -> None:
    log = logging.getLogger("desktop.test")
    log.warning("request headers {'Authorization': 'Bearer %s'}", TOKEN)
    log.warning("GET /api/ws?access_token=%s&x=1 and password=hunter2", "s3cret")
    log.warning('{"access_token": "%s", "password": "hunter2"}', TOKEN)

    def fail() -> None:
        raise RuntimeError(f"boom with {TOKEN}")

    thread = threading.Thread(target=fail, name="worker")
    thread.start()
    thread.join()

    text = log_to.read_text()
    assert "uncaught exception in thread worker" in text
    assert "RuntimeError: boom with [redacted]" in text
    assert "Bearer [redacted]" in text and "access_token=[redacted]&x=1" in text
    for secret in (TOKEN, "s3cret", "hunter2", TOKEN.split(".")[2]):
        assert secret not in text


def test_keyboard_shortcuts_lists_every_action_with_keys(main_window: Any) -> None:
    rows = dict(shortcut_rows(main_window))
    assert rows["Launch Campaign"] == "Ctrl+L"
    assert rows["Find"] == "Ctrl+F"
    assert rows["Keyboard Shortcuts"] == "Ctrl+/"
    dialog = main_window.help_menu.show_shortcuts()
    assert dialog.table.rowCount() == len(rows)
    dialog.close()

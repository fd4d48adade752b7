"""Signing in without a server: the dialog says what is wrong and what to do."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from desktop.ui.app import DesktopApp
from desktop.ui.login_dialog import LoginDialog
from desktop.ui.preferences import Preferences
from tests.backend import ALICE, DEMO_PASSWORD


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens once the probe is closed


@pytest.fixture
def app(tmp_path: Path, qapp: Any) -> Iterator[DesktopApp]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    controller = DesktopApp(Preferences(settings), quit_app_when_done=False)
    yield controller
    controller.quit()


def test_unreachable_server_is_explained_in_the_dialog(app: DesktopApp, qtbot: Any) -> None:
    url = closed_port_url()
    app.start(url, ALICE, None)
    dialog = app.login_dialog
    assert isinstance(dialog, LoginDialog)
    assert dialog.server.text() == url and dialog.email.text() == ALICE
    dialog.password.setText(DEMO_PASSWORD)
    dialog.submit()
    qtbot.waitUntil(lambda: "Cannot reach the server" in dialog.message.text(), timeout=10_000)
    assert "pulse up" in dialog.message.text()
    assert dialog.sign_in_button.isEnabled() and app.window is None


def test_a_given_password_that_fails_opens_the_dialog_with_the_reason(
    app: DesktopApp, qtbot: Any
) -> None:
    app.start(closed_port_url(), ALICE, DEMO_PASSWORD)
    qtbot.waitUntil(lambda: app.login_dialog is not None, timeout=10_000)
    assert "Cannot reach the server" in app.login_dialog.message.text()


def test_empty_fields_are_asked_for_before_any_request(app: DesktopApp) -> None:
    app.start("", "", None)
    dialog = app.login_dialog
    dialog.server.setText("")
    dialog.submit()
    assert "Enter the server address" in dialog.message.text()
    dialog.server.setText("localhost:8765")
    dialog.email.setText(ALICE)
    dialog.submit()
    assert dialog.message.text() == "Enter your email and password."


def test_password_is_never_written_to_the_settings_file(
    app: DesktopApp, tmp_path: Path, qtbot: Any
) -> None:
    app.start(closed_port_url(), ALICE, None)
    dialog = app.login_dialog
    dialog.password.setText("s3cret-value")
    assert not dialog.remember.isEnabled()  # no keyring in tests: nothing is stored
    dialog.submit()
    qtbot.waitUntil(lambda: "Cannot reach" in dialog.message.text(), timeout=10_000)
    app.preferences.sync()
    text = (tmp_path / "settings.ini").read_text() if (tmp_path / "settings.ini").exists() else ""
    assert "s3cret-value" not in text

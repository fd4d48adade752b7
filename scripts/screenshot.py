"""Take a screenshot of the real desktop window into docs/screenshot.png.

Run under a display; on a headless machine use Xvfb:

    xvfb-run -a -s "-screen 0 1600x900x24" .venv/bin/python scripts/screenshot.py

Without `--server` it starts its own `pulse up --headless` on demo data in a temporary
directory and stops it afterwards. It signs in as alice, launches a campaign so that the
flash banner and live highlights show, and saves the main window (and the detail view).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PASSWORD = "pulse-demo"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_backend(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PULSE_DEMO_MEMBERS": os.environ.get("PULSE_DEMO_MEMBERS", "5000")}
    pulse = Path(sys.executable).parent / "pulse"
    command = [str(pulse), "up", "--headless", "--data-dir", str(directory), "--port", str(port)]
    log = open(directory / "pulse-up.log", "wb")  # noqa: SIM115 - lives as long as the child
    child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"pulse up exited; see {directory / 'pulse-up.log'}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return child, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    child.terminate()
    raise SystemExit("pulse up did not become ready within 120 s")


def wait_until(condition: Callable[[], object], timeout: float) -> bool:
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)
    return bool(condition())


def save(widget: object, path: Path) -> None:
    from PySide6.QtGui import QImage

    image = widget.grab().toImage()  # type: ignore[attr-defined]
    small = image.convertToFormat(QImage.Format.Format_Indexed8)  # a few dozen KB, not MBs
    small.save(str(path), "PNG", 9)
    print(f"{path.relative_to(ROOT)}: {image.width()}x{image.height()}, {path.stat().st_size:,} B")


def shoot(url: str, settings_dir: Path, detail: bool, theme: str = "system") -> None:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop.ui.app import DesktopApp
    from desktop.ui.preferences import Preferences
    from desktop.ui.theme import apply_theme
    from pulse_core.stats import CampaignState

    app = QApplication(sys.argv)
    app.setApplicationDisplayName("Campaign Pulse")
    apply_theme(theme, app)
    settings = QSettings(str(settings_dir / "settings.ini"), QSettings.Format.IniFormat)
    preferences = Preferences(settings)
    preferences.set_notifications_offered("alice@acme.example")  # no first-run offer on it
    controller = DesktopApp(preferences, quit_app_when_done=False)
    controller.start(url, "alice@acme.example", PASSWORD)
    if not wait_until(lambda: controller.window is not None and controller.window.loaded, 30):
        raise SystemExit("the window did not load its campaigns within 30 s")
    window = controller.window
    assert window is not None
    window.resize(1580, 400)
    window.move(0, 0)
    target = next((c for c in window.store if c.state is CampaignState.NOT_LAUNCHED), None)
    if target is not None:
        window.select_campaign(target.id)
        window.launch_action.trigger()
        if window.flows.dialog is not None:
            window.flows.dialog.accept()  # Launch, in the launch confirmation
        recent = window.dashboard.flashes.recent
        wait_until(lambda: any("offers created" in f.text for f in recent), 30)
        window.dashboard.flashes.clear()
        wait_until(lambda: False, 0.3)
        offers = next(f for f in window.dashboard.flashes.recent if "offers created" in f.text)
        window.dashboard.flashes.push(offers)  # show the seed's message on the banner
        window.select_campaign(target.id)
    wait_until(lambda: False, 1.0)
    DOCS.mkdir(exist_ok=True)
    save(window, DOCS / "screenshot.png")
    if detail and target is not None:
        view = window.open_campaign(target.id)
        assert view is not None
        view.resize(960, 640)
        wait_until(lambda: view.history.count() > 0, 15)
        wait_until(lambda: False, 1.0)
        save(view, DOCS / "screenshot-detail.png")
    controller.quit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="use this running server instead of starting one")
    parser.add_argument("--detail", action="store_true", help="also save the detail view")
    parser.add_argument(
        "--theme", choices=("system", "light", "dark"), default="system", help="View → Theme"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="pulse-shot-") as tmp:
        directory = Path(tmp)
        child = None
        url = args.server
        if url is None:
            child, url = start_backend(directory)
        try:
            shoot(url, directory, args.detail, args.theme)
        finally:
            if child is not None:
                child.terminate()
                child.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Take the README's screenshots of the real desktop window into docs/.

Run under a display; on a headless machine use Xvfb:

    xvfb-run -a -s "-screen 0 1600x900x24" .venv/bin/python scripts/screenshot.py

Without `--server` it starts its own `pulse up --headless` on demo data in a temporary
directory and stops it afterwards. It signs in as alice and launches a campaign so that the
flash banner and live highlights show, then saves, in docs/:

- screenshot.png: the main window;
- screenshot-detail.png: that campaign's detail view;
- screenshot-new-campaign.png: the New Campaign dialog, filled in, one bid breaking a rule;
- screenshot-dark.png: the main window after View → Theme → Dark;
- screenshot-offline.png: the app started again with the server stopped, showing the saved
  grid stale (only without `--server`: the script stops its own server for it).

`--only` takes some of them (main, detail, new-campaign, dark, offline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from pulse_cli.process import Process, free_port, pulse_command, running, wait_ready

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PASSWORD = "pulse-demo"
EMAIL = "alice@acme.example"
SHOTS = ("main", "detail", "new-campaign", "dark", "offline")
WINDOW_SIZE = (1580, 340)  # six campaigns, every column readable

# What a marketer would type into the New Campaign dialog. The offers step down from the
# bullseye outward; the third band's offer is one the rules refuse (it rises), so that the
# dialog shows its inline message and keeps Create disabled.
NEW_TITLE = "Autumn Trail Weekend"
NEW_DESCRIPTION = "20% off trail shoes and rain shells, Friday to Sunday, for members near a store."
NEW_OFFERS = ("6.00", "4.50", "5.00", "2.00", "1.50", "1.00")
NEW_COSTS = ("1.20", "0.90", "0.60", "0.40", "0.30", "0.20")


@contextmanager
def running_backend(directory: Path) -> Iterator[tuple[Process, str]]:
    """`pulse up --headless` on demo data in `directory`: (it, its URL) once it is ready;
    stopped on leaving."""
    port = free_port()
    env = {**os.environ, "PULSE_DEMO_MEMBERS": os.environ.get("PULSE_DEMO_MEMBERS", "5000")}
    args = ["up", "--headless", "--data-dir", str(directory), "--port", str(port)]
    up = Process("pulse up", pulse_command(*args), env, log_path=directory / "pulse-up.log")
    url = f"http://127.0.0.1:{port}"
    with running(up, timeout=30):
        wait_ready(url, timeout=120, process=up)
        yield up, url


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


def save(widget: Any, name: str) -> None:
    """Save `widget` as docs/`name`: its exact colours (a UI has few, so the PNG is small),
    made smaller still by optipng when it is installed (`apt-get install optipng`)."""
    from PySide6.QtGui import QImage

    path = DOCS / name
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    image.save(str(path), "PNG", 9)
    optipng = shutil.which("optipng")
    if optipng is not None:
        subprocess.run([optipng, "-quiet", "-o2", str(path)], check=False)
    print(f"{path.relative_to(ROOT)}: {image.width()}x{image.height()}, {path.stat().st_size:,} B")


class Shooter:
    """One QApplication, one settings file and one saved-grid folder: one computer."""

    def __init__(self, url: str, directory: Path, theme: str, shots: set[str]) -> None:
        from PySide6.QtCore import QSettings
        from PySide6.QtWidgets import QApplication

        from desktop.client.grid_cache import GridCache
        from desktop.ui.preferences import Preferences
        from desktop.ui.theme import apply_theme

        self.url = url
        self.theme = theme
        self.shots = shots
        self.app = QApplication(sys.argv)
        self.app.setApplicationDisplayName("Campaign Pulse")
        apply_theme(theme, self.app)
        settings = QSettings(str(directory / "settings.ini"), QSettings.Format.IniFormat)
        self.preferences = Preferences(settings)
        self.preferences.theme = theme
        self.preferences.set_notifications_offered(EMAIL)  # no first-run offer on it
        self.cache = GridCache(directory / "grids")  # not the user's own saved grids
        DOCS.mkdir(exist_ok=True)

    def open_window(self) -> tuple[Any, Any]:
        """Start the app as alice; (controller, window) once the window shows a grid."""
        from desktop.ui.app import DesktopApp

        controller = DesktopApp(self.preferences, quit_app_when_done=False, cache=self.cache)
        controller.start(self.url, EMAIL, PASSWORD)
        if not wait_until(lambda: controller.window is not None and controller.window.loaded, 30):
            raise SystemExit("the window did not load its campaigns within 30 s")
        window = controller.window
        assert window is not None
        window.resize(*WINDOW_SIZE)
        window.move(0, 0)
        return controller, window

    def online(self) -> None:
        """The live window: the grid, a campaign's details, New Campaign, the dark theme."""
        from pulse_core.stats import CampaignState

        controller, window = self.open_window()
        target = next((c for c in window.store if c.state is CampaignState.NOT_LAUNCHED), None)
        offers, view = None, None
        if target is not None:
            if "detail" in self.shots:  # open before the launch: its chart follows it live
                view = window.open_campaign(target.id)
                assert view is not None
                view.resize(1080, 640)
                wait_until(lambda: view.history.count() > 0, 15)
            offers = launch(window, target.id)
        settle()
        if "main" in self.shots:
            wait_for_glow(window)
            save(window, "screenshot.png")
        if view is not None:
            # Until the offers went live and a few ad activity events came in.
            wait_until(lambda: sum(p.spend_to_date > 0 for p in view.chart.points) >= 4, 30)
            settle()
            save(view, "screenshot-detail.png")
            view.close()
        if "new-campaign" in self.shots:
            self.new_campaign(window)
        if "dark" in self.shots:
            self.dark(window, target.id if target else None, offers)
        # Live until now, then closed: the grid goes to disk for the offline start.
        wait_until(lambda: window.live_seq is not None, 15)
        controller.quit()

    def new_campaign(self, window: Any) -> None:
        from pulse_core.stats import PopulationStatus

        dialog = window.flows.new_campaign()
        if not wait_until(lambda: dialog.loaded, 15):
            raise SystemExit("the New Campaign dialog did not load the targets within 15 s")
        populated = [
            index
            for index, target in enumerate(dialog.targets)
            if target.population_status is PopulationStatus.POPULATED and len(target.bands) >= 3
        ]
        if populated:  # the one with most bands, for a full bids grid
            best = max(populated, key=lambda i: len(dialog.targets[i].bands))
            dialog.target.setCurrentIndex(best)
        dialog.title.setText(NEW_TITLE)
        dialog.description.setPlainText(NEW_DESCRIPTION)
        for row, offer, cost in zip(dialog.rows, NEW_OFFERS, NEW_COSTS, strict=False):
            row.offer.setText(offer)
            row.cost.setText(cost)
        if dialog.rows:
            dialog.rows[min(2, len(dialog.rows) - 1)].offer.setFocus()  # the one it refuses
        dialog.adjustSize()
        settle()
        save(dialog, "screenshot-new-campaign.png")
        dialog.reject()

    def dark(self, window: Any, campaign_id: int | None, offers: Any) -> None:
        from desktop.ui.theme import Theme

        window.theme_menu.choose(Theme.DARK)  # View → Theme → Dark
        if offers is not None:
            window.dashboard.flashes.clear()
            window.dashboard.flashes.push(offers)
        if campaign_id is not None:
            window.select_campaign(campaign_id)
        settle()
        wait_for_glow(window)
        save(window, "screenshot-dark.png")
        window.theme_menu.choose(Theme(self.theme))

    def offline(self, stop_server: Callable[[], object]) -> None:
        """Start again with the server stopped: the saved grid, stale and dimmed."""
        stop_server()
        controller, window = self.open_window()
        if not wait_until(lambda: window.keeper.stale, 15):
            raise SystemExit("the window did not open the saved grid stale")
        settle()
        save(window, "screenshot-offline.png")
        controller.quit()


def launch(window: Any, campaign_id: int) -> Any:
    """Launch the campaign (through the launch confirmation); its "offers created" flash."""
    window.select_campaign(campaign_id)
    window.launch_action.trigger()
    if window.flows.dialog is not None:
        window.flows.dialog.accept()  # Launch, in the launch confirmation
    recent = window.dashboard.flashes.recent
    wait_until(lambda: any("offers created" in f.text for f in recent), 30)
    window.dashboard.flashes.clear()
    wait_until(lambda: False, 0.3)
    offers = next(f for f in window.dashboard.flashes.recent if "offers created" in f.text)
    window.dashboard.flashes.push(offers)  # show the seed's message on the banner
    window.select_campaign(campaign_id)
    return offers


def wait_for_glow(window: Any) -> None:
    """Until a live event makes some cells glow (demo traffic does every few seconds)."""
    model = window.grid.model
    columns = range(model.columnCount())

    def glowing() -> int:
        return sum(model.is_highlighted(c.id, n) for c in window.store for n in columns)

    wait_until(lambda: glowing() >= 4, 15)
    wait_until(lambda: False, 0.1)  # painted


def settle() -> None:
    """Let the window paint what just changed."""
    wait_until(lambda: False, 1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="use this running server instead of starting one")
    parser.add_argument(
        "--only", nargs="+", choices=SHOTS, default=list(SHOTS), help="take only these"
    )
    parser.add_argument(
        "--theme", choices=("system", "light", "dark"), default="system", help="View → Theme"
    )
    args = parser.parse_args()
    shots = set(args.only)
    if args.server and "offline" in shots:
        print("offline: skipped, it needs a server of the script's own to stop")
        shots.discard("offline")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    with tempfile.TemporaryDirectory(prefix="pulse-shot-") as tmp, ExitStack() as stack:
        directory = Path(tmp)
        child = None
        url = args.server
        if url is None:
            child, url = stack.enter_context(running_backend(directory))
        shooter = Shooter(url, directory, args.theme, shots)
        shooter.online()
        if child is not None and "offline" in shots:
            shooter.offline(lambda: child.stop(30))
    return 0


if __name__ == "__main__":
    sys.exit(main())

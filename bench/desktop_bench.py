"""Desktop benchmark: time from login to a filled grid, and GUI latency under a live event flood.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/desktop_bench.py            # in-process
    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/desktop_bench.py --server URL

In-process, campaigns and events enter through the same bridge the network client feeds
(from the network thread), so everything from the bridge to the painted grid is measured;
with `--server`, the login and the campaign list come from a real server as well.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QSettings, Qt
from PySide6.QtWidgets import QApplication

from desktop.client.models import Campaign, EventFrame, UserSession
from desktop.ui.app import DesktopApp
from desktop.ui.bridge import ClientBridge
from desktop.ui.campaign_model import COL_PENDING_OFFERS
from desktop.ui.latency import LatencyProbe
from desktop.ui.main_window import MainWindow
from desktop.ui.preferences import Preferences
from desktop.ui.runner import AsyncRunner
from desktop.ui.sounds import SilentPlayer
from pulse_core.stats import CampaignStats


def pump_until(condition: Callable[[], object], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)


def campaigns(count: int) -> list[Campaign]:
    rng = random.Random(count)
    states = ["active", "not_launched", "archived"]
    return [
        Campaign.from_wire(
            {
                "id": i,
                "title": f"Campaign {rng.randrange(10**6):06d}",
                "state": states[i % 3],
                "target": {
                    "id": i % 7,
                    "title": f"Target {i % 7}",
                    "population_status": "populated",
                },
                "stats": {
                    "pending_offers": rng.randrange(5000),
                    "spend_to_date": rng.random() * 1e4,
                },
            }
        )
        for i in range(1, count + 1)
    ]


def offline_window(settings_dir: Path) -> tuple[MainWindow, ClientBridge, AsyncRunner]:
    runner = AsyncRunner()
    runner.start_loop()
    bridge = ClientBridge(runner, "http://127.0.0.1:9")
    bridge.session.user = UserSession("token", 1, "bench@example", 1, "Bench")
    settings = QSettings(str(settings_dir / "bench.ini"), QSettings.Format.IniFormat)
    window = MainWindow(bridge, Preferences(settings), sound_player=SilentPlayer("bench"))
    window.resize(1400, 800)
    window.show()
    return window, bridge, runner


def fill_grid(count: int, settings_dir: Path) -> float:
    window, bridge, runner = offline_window(settings_dir)
    rows = campaigns(count)
    started = time.perf_counter()
    bridge.on_campaigns(rows)  # as the session does after GET /api/campaigns
    pump_until(lambda: window.loaded)
    window.table.viewport().repaint()
    elapsed = time.perf_counter() - started
    window.shutdown()
    window.close()
    bridge.close()
    runner.stop()
    return elapsed


def flood(rate: int, seconds: float, count: int, settings_dir: Path, *, live_sort: bool) -> str:
    window, bridge, runner = offline_window(settings_dir)
    bridge.on_campaigns(campaigns(count))
    pump_until(lambda: window.loaded)
    if live_sort:
        # The worst case: sorted on the column every event changes, so rows keep moving.
        window.table.sortByColumn(COL_PENDING_OFFERS, Qt.SortOrder.DescendingOrder)
    topic = bridge.session.marketer_topic

    async def produce() -> int:
        rng = random.Random(7)
        sent, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(elapsed * rate)
            while sent < due:
                sent += 1
                campaign_id = rng.randrange(1, count + 1)
                stats = CampaignStats(pending_offers=rng.randrange(10_000), banner_views=sent)
                frame = EventFrame(topic, sent, "campaign_updated", campaign_id, stats=stats)
                bridge.on_event(frame)
            await asyncio.sleep(0.002)
        return sent

    probe = LatencyProbe()
    probe.start()
    future = runner.submit(produce())
    pump_until(future.done, timeout=seconds + 30)
    pump_until(lambda: not bridge.take_events() and not window._coalesce.isActive())
    probe.stop()
    sent = future.result()
    window.shutdown()
    window.close()
    bridge.close()
    runner.stop()
    order = "sorted by pending offers" if live_sort else "in the default order"
    return f"{sent:,} events in {seconds:.0f} s over {count:,} rows {order}: {probe.summary()}"


def real_login(url: str, email: str, password: str, settings_dir: Path) -> str:
    settings = QSettings(str(settings_dir / "real.ini"), QSettings.Format.IniFormat)
    app = DesktopApp(Preferences(settings), quit_app_when_done=False)
    started = time.perf_counter()
    app.start(url, email, password)
    pump_until(lambda: app.window is not None)
    signed_in = time.perf_counter() - started
    window = app.window
    assert window is not None
    pump_until(lambda: window.loaded)
    window.table.viewport().repaint()
    filled = time.perf_counter() - started
    rows = len(window.store)
    app.quit()
    return (
        f"{url}: signed in after {signed_in * 1000:.0f} ms; "
        f"{rows:,} rows filled after {filled * 1000:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="also time a real login against this server")
    parser.add_argument("--email", default="alice@acme.example")
    parser.add_argument("--password", default=os.environ.get("PULSE_PASSWORD", "pulse-demo"))
    parser.add_argument("--rate", type=int, default=500, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    app = QApplication(sys.argv)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if args.server:
            print(real_login(args.server, args.email, args.password, directory))
        for count in (1_000, 10_000):
            runs = [fill_grid(count, directory) for _ in range(3)]
            print(f"grid fill, {count:,} campaigns: median {statistics.median(runs) * 1000:.0f} ms")
        for live_sort in (False, True):
            for count in (1_000, 10_000):
                print(flood(args.rate, args.seconds, count, directory, live_sort=live_sort))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())

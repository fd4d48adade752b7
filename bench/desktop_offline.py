"""Start with the server down → the saved grid shown stale, with N campaigns kept on disk.

Run: `QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.desktop_offline --campaigns
1000,10000 --repeat 5`. For each N it writes a saved grid of N campaigns of
alice@acme.example (titles, targets, states, stats with three bands, dates) into a temporary
cache folder, keeps her password in an in-memory keyring, and points the app at a port where
nothing listens (the server is down: the sign-in is refused at once). It then times
`DesktopApp.start()` (no password given: the keyring's is tried first, as on a real start)
until the main window holds all N rows marked stale ("Offline — data as of …") and has
repainted its grid, with a fresh DesktopApp each time. Writing the file (in the app's writer
thread: all rows the first time, then only the rows that changed are encoded again) and
reading it alone are timed too. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from bench.desktop_login import wait_until
from desktop.client import credentials
from desktop.client.grid_cache import CachedGrid, GridCache, Memo
from desktop.client.models import Campaign, UserSession
from desktop.ui.app import DesktopApp
from desktop.ui.preferences import Preferences
from pulse_core.stats import CampaignStats

EMAIL = "alice@acme.example"
PASSWORD = "pulse-demo"
STATES = ("active", "active", "paused", "not_launched", "archived")
WORDS = ("Trail", "Summit", "River", "Canyon", "Forest", "Alpine", "Desert", "Coastal")


class MemoryKeyring(KeyringBackend):
    """Secrets in a dict: the bench needs no system keyring."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.secrets.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens once the probe is closed


def campaigns(count: int, rng: random.Random) -> list[Campaign]:
    made = []
    for n in range(count):
        state = STATES[n % len(STATES)]
        target = n % 9
        bands = [
            {"band_id": target * 3 + level, "level": level, "name": name, "population": pop}
            for level, (name, pop) in enumerate(
                (("Bullseye", rng.randrange(500)), ("Ring 1", rng.randrange(900)), ("Ring 2", 999))
            )
        ]
        made.append(
            Campaign.from_wire(
                {
                    "id": n + 1,
                    "title": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n + 1:05d}",
                    "description": f"Benchmark campaign {n + 1}",
                    "state": state,
                    "target": {
                        "id": target,
                        "title": f"Audience {target}",
                        "population_status": "populated",
                        "last_populated_at": "2026-11-30T10:00:00+00:00",
                    },
                    "stats": {
                        "target_population": 2398,
                        "pending_offers": rng.randrange(5000),
                        "current_offers": rng.randrange(5000),
                        "completed_offers": rng.randrange(500),
                        "pending_spend": round(rng.random() * 1e3, 2),
                        "spend_to_date": round(rng.random() * 1e4, 2),
                        "balance": round(rng.random() * 1e4, 2),
                        "unique_reach": rng.randrange(2000),
                        "banner_views": rng.randrange(10**5),
                        "text_jumps": rng.randrange(10**4),
                        "bands": bands,
                    },
                    "starts_at": "2026-11-01T00:00:00+00:00",
                    "ends_at": "2027-01-31T00:00:00+00:00",
                    "launched_at": None if state == "not_launched" else "2026-11-02T09:00:00Z",
                    "as_of_seq": rng.randrange(1, 50_000),
                }
            )
        )
    return made


def start_offline(url: str, cache: GridCache, settings_file: Path, count: int) -> float:
    """Seconds from `start()` to the stale grid of `count` rows, repainted."""
    settings = QSettings(str(settings_file), QSettings.Format.IniFormat)
    preferences = Preferences(settings)
    preferences.server_url, preferences.email = url, EMAIL
    preferences.remember_password = True
    app = DesktopApp(preferences, quit_app_when_done=False, cache=cache)
    started = time.perf_counter()
    app.start()

    def shown() -> bool:
        window = app.window
        return window is not None and window.keeper.stale and len(window.store) == count

    wait_until(shown, 60)
    assert app.window is not None
    app.window.table.viewport().repaint()
    seconds = time.perf_counter() - started
    window = app.window
    app.quit()
    window.deleteLater()
    QApplication.processEvents()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", default="1000,10000", help="comma-separated counts")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    counts = [int(part) for part in args.campaigns.split(",")]
    app = QApplication.instance() or QApplication(sys.argv)
    assert app is not None
    keyring.set_keyring(MemoryKeyring())
    url = closed_port_url()
    credentials.save_password(url, EMAIL, PASSWORD)
    user = UserSession("", 1, EMAIL, 1, "Acme Outdoor")
    print(
        "| campaigns | file | first write | write after a change | read "
        "| start → stale grid shown (median, min–max) |"
    )
    print("|---:|---:|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory(prefix="pulse-offline-bench-") as directory:
        cache = GridCache(Path(directory) / "cache")
        for count in counts:
            rows = campaigns(count, random.Random(count))
            grid = CachedGrid(user, 123_456, datetime.now(UTC), rows)
            memo = Memo()
            began = time.perf_counter()
            cache.save(url, grid, memo)
            write_s = time.perf_counter() - began
            changed = [rows[0].with_stats(CampaignStats(pending_offers=1), 123_457), *rows[1:]]
            began = time.perf_counter()
            cache.save(url, replace(grid, seq=123_457, campaigns=changed), memo)
            rewrite_s = time.perf_counter() - began
            size = cache.path(url, EMAIL).stat().st_size
            began = time.perf_counter()
            loaded = cache.load(url, EMAIL)
            read_s = time.perf_counter() - began
            assert loaded is not None and len(loaded.campaigns) == count
            runs = [
                start_offline(url, cache, Path(directory) / f"settings-{n}.ini", count)
                for n in range(args.repeat)
            ]
            print(
                f"| {count:,} | {size / 1e6:.1f} MB | {write_s * 1000:.0f} ms "
                f"| {rewrite_s * 1000:.0f} ms | {read_s * 1000:.0f} ms "
                f"| {statistics.median(runs):.2f} s "
                f"({min(runs):.2f}–{max(runs):.2f} s, {len(runs)} starts) |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

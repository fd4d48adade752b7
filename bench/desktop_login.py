"""Login → filled grid in the real desktop app against a real server with N campaigns.

Run: `QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.desktop_login --campaigns 1000,10000
--repeat 3`. For each N it builds a SQLite database in a temporary directory (the demo data with
`--members` members, plus N campaigns of "Acme Outdoor" with bids and a deposit: active, not
launched and archived, on Acme's two targets), starts an embedded redis-server and
`pulse server` as child processes, and then, in this process, times
`DesktopApp.start(url, "alice@acme.example", "pulse-demo")` until the main window shows, has
loaded every campaign and has repainted its grid (as `real_login` in bench/desktop_bench.py
does). `--repeat` logins, each with a fresh DesktopApp. `GET /api/campaigns` alone (httpx, the
same token every time) is timed too, so the server's share is visible: asking for gzip as the
desktop's httpx does, and without. Prints Markdown tables and the goals at 10,000 campaigns.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import httpx
from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication
from sqlalchemy import func, insert, select

from bench.desktop_bench import pump_until
from bench.launch import running_backend
from desktop.client.grid_cache import GridCache
from desktop.ui.app import DesktopApp
from desktop.ui.preferences import Preferences
from pulse_core.stats import CampaignState, PopulationStatus
from pulse_data.database import Database
from pulse_data.migrate import upgrade_database
from pulse_data.models import Band, Bid, Campaign, LedgerEntry, Marketer, Target, utcnow
from pulse_data.seed import seed_demo
from pulse_data.sqlutil import table

MARKETER = "Acme Outdoor"
GOAL_CAMPAIGNS, GOAL_LOGIN_S, GOAL_GET_S = 10_000, 1.0, 0.3  # on a quiet machine
EMAIL = "alice@acme.example"
PASSWORD = "pulse-demo"
DEPOSIT_CENTS = 1_000_000
# Launched campaigns go on populated targets (launching populates its target); the share of
# each state is roughly that of the demo data.
STATES = (CampaignState.ACTIVE,) * 2 + (CampaignState.NOT_LAUNCHED, CampaignState.ARCHIVED)
WORDS = (
    "Trail", "Summit", "River", "Canyon", "Forest", "Alpine", "Desert", "Coastal",
    "Spring", "Summer", "Autumn", "Winter", "Weekend", "Family", "Junior", "Pro",
)  # fmt: skip


Wait = Callable[[Callable[[], object], float], None]


def wait_until(condition: Callable[[], object], timeout: float = 120.0) -> None:
    """`pump_until` of bench/desktop_bench.py, but asleep between events as the app's loop is.

    `pump_until` spins on `processEvents`, taking the GIL from the network thread that receives
    and decodes the campaigns: at 10,000 campaigns that made logins 5-40% slower (`--busy-wait`
    measures with it).
    """
    deadline = time.monotonic() + timeout
    timer = QTimer()
    timer.start(5)  # wakes the loop up to check the condition and the deadline
    try:
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met")
            QApplication.processEvents(
                QEventLoop.ProcessEventsFlag.AllEvents
                | QEventLoop.ProcessEventsFlag.WaitForMoreEvents
            )
    finally:
        timer.stop()


@dataclass(frozen=True, slots=True)
class Seeded:
    demo_campaigns: int  # the marketer's campaigns in the demo data
    expected: int  # every campaign of the marketer: demo + added
    seconds: float


@dataclass(frozen=True, slots=True)
class LoginRun:
    signed_in_s: float  # start() → the main window exists
    filled_s: float  # start() → every campaign loaded and the grid repainted
    cpu_s: float  # CPU time of this process (all its threads) over `filled_s`
    stored: int
    shown: int


@dataclass(frozen=True, slots=True)
class RestRun:
    seconds: list[float]  # asking for gzip, as the desktop's httpx does
    identity_seconds: list[float]  # `Accept-Encoding: identity`
    login_s: float  # POST /api/auth/login (the desktop does it before showing its window)
    first_s: float  # the first request after the server started (not in `seconds`)
    payload_bytes: int
    wire_bytes: int  # what went over the socket when gzip was asked for
    campaigns: int


async def add_campaigns(db: Database, count: int, rng: random.Random) -> tuple[int, int]:
    """Insert `count` campaigns of MARKETER with bids and a deposit; returns (demo, total)."""
    now = utcnow()
    async with db.writer() as session:
        marketer_id = await session.scalar(select(Marketer.id).where(Marketer.name == MARKETER))
        assert marketer_id is not None, "seed the demo data first"
        demo = await session.scalar(
            select(func.count(Campaign.id)).where(Campaign.marketer_id == marketer_id)
        )
        targets = (
            await session.execute(
                select(Target.id, Target.population_status)
                .where(Target.marketer_id == marketer_id)
                .order_by(Target.id)
            )
        ).all()
        populated = [tid for tid, status in targets if status == PopulationStatus.POPULATED]
        everyone = [tid for tid, _ in targets]
        assert populated, f"no populated target of {MARKETER}"
        bands: dict[int, list[int]] = {tid: [] for tid in everyone}
        for band_id, target_id in await session.execute(
            select(Band.id, Band.target_id)
            .where(Band.target_id.in_(everyone))
            .order_by(Band.target_id, Band.level)
        ):
            bands[target_id].append(band_id)

        before = await session.scalar(select(func.coalesce(func.max(Campaign.id), 0)))
        rows = []
        for n in range(count):
            state = STATES[n % len(STATES)]
            launched = state is not CampaignState.NOT_LAUNCHED
            target_id = rng.choice(populated if launched else everyone)
            title = f"{rng.choice(WORDS)} {rng.choice(WORDS)} {n + 1:05d}"
            rows.append(
                {
                    "marketer_id": marketer_id,
                    "target_id": target_id,
                    "title": title,
                    "description": f"Benchmark campaign {n + 1} ({state.label.lower()})",
                    "starts_at": now - timedelta(days=30 if launched else -7),
                    "ends_at": now + timedelta(days=60),
                    "launched_at": now - timedelta(days=21) if launched else None,
                    "deactivated_at": (
                        now - timedelta(days=2) if state is CampaignState.ARCHIVED else None
                    ),
                    "created_at": now,
                }
            )
        await session.execute(insert(table(Campaign)), rows)
        added = (
            await session.execute(
                select(Campaign.id, Campaign.target_id)
                .where(Campaign.id > before)
                .order_by(Campaign.id)
            )
        ).all()
        assert len(added) == count
        await session.execute(
            insert(table(Bid)),
            [
                {
                    "campaign_id": campaign_id,
                    "band_id": band_id,
                    "offer_amount_cents": 100 - 10 * level,
                    "marketer_cost_cents": 150 - 10 * level,
                }
                for campaign_id, target_id in added
                for level, band_id in enumerate(bands[target_id])
            ],
        )
        await session.execute(
            insert(table(LedgerEntry)),
            [
                {
                    "campaign_id": campaign_id,
                    "amount_cents": DEPOSIT_CENTS,
                    "description": "Deposit",
                    "created_at": now,
                }
                for campaign_id, _ in added
            ],
        )
        await session.commit()
    return int(demo or 0), int(demo or 0) + count


async def prepare(url: str, members: int, campaigns: int) -> Seeded:
    """Migrate, seed the demo data and add `campaigns` campaigns of MARKETER."""
    started = time.perf_counter()
    db = Database(url)
    try:
        upgrade_database(url)
        assert await seed_demo(db, members=members), "the database already has the demo data"
        demo, expected = await add_campaigns(db, campaigns, random.Random(campaigns))
    finally:
        await db.dispose()
    return Seeded(demo, expected, time.perf_counter() - started)


@contextmanager
def running_server(url: str, directory: Path) -> Iterator[str]:
    """An embedded redis-server and `pulse server` on `url`'s database; yields the base URL."""
    with running_services(url, directory) as (base, _redis_url):
        yield base


@contextmanager
def running_services(url: str, directory: Path) -> Iterator[tuple[str, str]]:
    """`running_server`, yielding the server's base URL and the Redis URL."""
    with running_backend(
        url,
        directory,
        worker=False,
        PULSE_DATA_DIR=str(directory / "data"),
        PULSE_LOGIN_ATTEMPTS_PER_MINUTE="1000",
    ) as (base, redis_url):
        yield base, redis_url


def time_rest(base: str, repeat: int) -> RestRun:
    """`GET /api/campaigns` alone, with one token: the first request, then `repeat` timed."""
    with httpx.Client(base_url=base, timeout=120) as http:
        started = time.perf_counter()
        login = http.post("/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
        login.raise_for_status()
        login_s = time.perf_counter() - started
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        def get(encoding: str | None = None) -> tuple[float, httpx.Response]:
            asked = headers if encoding is None else {**headers, "Accept-Encoding": encoding}
            started = time.perf_counter()
            response = http.get("/api/campaigns", headers=asked)
            response.raise_for_status()
            return time.perf_counter() - started, response

        first_s, response = get()
        seconds, identity = [], []
        for _ in range(repeat):  # alternated, so both see the same machine
            seconds.append(get()[0])
            identity.append(get("identity")[0])
    return RestRun(
        seconds,
        identity,
        login_s,
        first_s,
        len(response.content),
        response.num_bytes_downloaded,
        len(response.json()),
    )


def time_login(base: str, settings_path: Path, timeout: float, wait: Wait = wait_until) -> LoginRun:
    """One sign-in of a fresh DesktopApp until its grid holds every campaign and is painted."""
    settings = QSettings(str(settings_path), QSettings.Format.IniFormat)
    cache = GridCache(settings_path.parent / "grids")  # not the user's cache folder
    app = DesktopApp(Preferences(settings), quit_app_when_done=False, cache=cache)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        app.start(base, EMAIL, PASSWORD)
        wait(lambda: app.window is not None or app.login_dialog is not None, timeout)
        if app.window is None:
            dialog = app.login_dialog
            raise RuntimeError(f"sign-in failed: {dialog.message.text() if dialog else '?'}")
        signed_in = time.perf_counter() - started
        window = app.window
        wait(lambda: window.loaded, timeout)
        window.table.viewport().repaint()
        filled = time.perf_counter() - started
        cpu = time.process_time() - cpu
        return LoginRun(signed_in, filled, cpu, len(window.store), window.proxy.rowCount())
    finally:
        app.quit()
        for widget in (app.window, app.login_dialog):
            if widget is not None:
                widget.deleteLater()
        app.deleteLater()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--campaigns", default="1000,10000", help="comma-separated campaign counts to add"
    )
    parser.add_argument("--repeat", type=int, default=3, help="logins (and GETs) per count")
    parser.add_argument("--members", type=int, default=2_000, help="demo members to seed")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per login")
    parser.add_argument(
        "--busy-wait",
        action="store_true",
        help="wait with desktop_bench.pump_until (spinning) instead of a sleeping event loop",
    )
    args = parser.parse_args()
    counts = [int(part.replace("_", "")) for part in args.campaigns.split(",")]
    wait: Wait = pump_until if args.busy_wait else wait_until

    def terminated(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through every `finally` below

    signal.signal(signal.SIGTERM, terminated)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    qt = QApplication.instance() or QApplication(sys.argv[:1])
    results: list[tuple[int, Seeded, list[LoginRun], RestRun]] = []
    with tempfile.TemporaryDirectory(prefix="pulse-bench-login-") as tmp:
        for count in counts:
            directory = Path(tmp) / f"n{count}"
            directory.mkdir()
            url = f"sqlite+aiosqlite:///{directory}/pulse.sqlite3"
            seeded = asyncio.run(prepare(url, args.members, count))
            print(
                f"N={count:,}: seeded {args.members:,} members and {seeded.expected:,} campaigns "
                f"of {MARKETER} in {seeded.seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            with running_server(url, directory) as base:
                rest = time_rest(base, args.repeat)
                assert rest.campaigns == seeded.expected, (rest.campaigns, seeded.expected)
                logins = []
                for run in range(args.repeat):
                    login = time_login(base, directory / f"desktop-{run}.ini", args.timeout, wait)
                    assert login.stored == seeded.expected, (login.stored, seeded.expected)
                    logins.append(login)
                    print(
                        f"  login {run + 1}: window after {ms(login.signed_in_s)}, "
                        f"{login.stored:,} rows filled after {ms(login.filled_s)} "
                        f"(the desktop's CPU: {ms(login.cpu_s)})",
                        file=sys.stderr,
                        flush=True,
                    )
            results.append((count, seeded, logins, rest))
    del qt

    print(
        "\n| campaigns | login → filled grid (median, min) | GET /api/campaigns alone "
        "(median, min) | the same without gzip (median, min) | rows shown |"
    )
    print("|---|---|---|---|---|")
    for count, seeded, logins, rest in results:
        filled = [login.filled_s for login in logins]
        print(
            f"| {count:,} + {seeded.demo_campaigns} demo = {seeded.expected:,} "
            f"| {ms(statistics.median(filled))}, {ms(min(filled))} "
            f"| {ms(statistics.median(rest.seconds))}, {ms(min(rest.seconds))} "
            f"| {ms(statistics.median(rest.identity_seconds))}, {ms(min(rest.identity_seconds))} "
            f"| {logins[-1].shown:,} of {logins[-1].stored:,} |"
        )
    print(
        "\n| campaigns | POST /api/auth/login alone | window shown (median) "
        "| window shown → filled grid (median) | the desktop's CPU (median, min) "
        "| first GET after start | JSON payload (gzipped on the wire) |"
    )
    print("|---|---|---|---|---|---|---|")
    for _count, seeded, logins, rest in results:
        shown = statistics.median(login.signed_in_s for login in logins)
        after = statistics.median(login.filled_s - login.signed_in_s for login in logins)
        cpu = [login.cpu_s for login in logins]
        print(
            f"| {seeded.expected:,} | {ms(rest.login_s)} | {ms(shown)} | {ms(after)} "
            f"| {ms(statistics.median(cpu))}, {ms(min(cpu))} | {ms(rest.first_s)} "
            f"| {rest.payload_bytes / 1e6:.1f} MB ({rest.wire_bytes / 1e6:.2f} MB) |"
        )
    for count, _seeded, logins, rest in results:
        if count == GOAL_CAMPAIGNS:
            filled_s = statistics.median(login.filled_s for login in logins)
            get_s = statistics.median(rest.seconds)
            print(
                f"\ngoal at {count:,} campaigns: login → filled grid ≤ {ms(GOAL_LOGIN_S)} "
                f"({ms(filled_s)}: {'met' if filled_s <= GOAL_LOGIN_S else 'NOT met'}), "
                f"GET /api/campaigns ≤ {ms(GOAL_GET_S)} "
                f"({ms(get_s)}: {'met' if get_s <= GOAL_GET_S else 'NOT met'})"
            )


if __name__ == "__main__":
    main()

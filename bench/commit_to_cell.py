"""A commit on the backend → the changed cell of a desktop grid, with 100 subscribers.

Run: `QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.commit_to_cell` (options: `--rate`
commits per second, `--seconds`, `--subscribers`, `--campaigns` in the grid). It builds a SQLite
database in a temporary directory (the demo data plus `--campaigns` campaigns of "Acme Outdoor",
as bench/desktop_login.py does), starts an embedded redis-server and `pulse server` as child
processes, and then:

- `--subscribers` - 1 light WebSocket clients in a child process, each subscribed to Acme's
  marketer topic (they read and parse every frame, as a dashboard would);
- one real desktop app in this process (offscreen `DesktopApp`, signed in as alice, its grid
  filled and live);
- a child process that commits deposits at a steady rate through the product's own path
  (`pulse_data.campaigns.deposit`: one transaction with its audit entry and `campaign_updated`
  event, published on Redis after the commit, as a worker's job or the API does), each to
  another campaign.

For each commit it takes the moment its transaction was done (in the committing process, right
after the commit, before Redis) and the moment the grid's model emits `dataChanged` for that
campaign's Balance cell: commit → cell, the goal's figure. It also splits that into commit → the
desktop's network thread has the frame, and frame → cell, and shows the event's `ts` (taken
inside the transaction, so it adds the commit itself) → cell and what the light clients saw
(`ts` → frame). Prints p50/p90/p95/p99/max and the goal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import httpx
from PySide6.QtCore import QCoreApplication, QEvent, QModelIndex, QSettings
from PySide6.QtWidgets import QApplication
from redis.asyncio import Redis
from sqlalchemy import select
from websockets.asyncio.client import connect

from bench.desktop_login import EMAIL, MARKETER, PASSWORD, prepare, running_services, wait_until
from desktop.client.grid_cache import GridCache
from desktop.client.models import EventFrame
from desktop.ui.app import DesktopApp
from desktop.ui.campaign_model import COL_BALANCE
from desktop.ui.preferences import Preferences
from pulse_cli.process import Process
from pulse_core.protocol import Event, Subscribe, Subscribed, encode, parse_server_frame
from pulse_core.topics import marketer_topic, parse_topic
from pulse_data.audit import command_line_actor
from pulse_data.campaigns import deposit
from pulse_data.database import Database
from pulse_data.eventlog import RecordedEvent
from pulse_data.models import Campaign, Marketer
from pulse_data.pubsub import EventPublisher

GOAL_P99_MS = 50.0
WARM_UP_SECONDS = 2.0  # commits in the first seconds are not counted


def epoch(ts: str) -> float:
    """An event's `ts` (ISO 8601 UTC, milliseconds) as seconds since the epoch."""
    return datetime.fromisoformat(ts).timestamp()


def percentiles(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return {
        "n": len(ordered),
        "p50": at(0.50),
        "p90": at(0.90),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


# ---- the committing process ---------------------------------------------------------------


class TimedPublisher(EventPublisher):
    """The product's publisher, noting when each commit was done (and how long after its ts)."""

    def __init__(self, db: Database, redis: Redis, topic: str) -> None:
        super().__init__(db, redis)
        self.topic = topic  # the marketer topic, whose seqs the desktop sees
        self.committed: list[float] = []  # ms from the events' ts to the commit's end
        self.done: dict[int, float] = {}  # the marketer topic's seq -> the commit's end

    async def publish(self, events: Sequence[RecordedEvent]) -> bool:
        now = time.time()  # the transaction has committed; Redis is next
        for recorded in events[:1]:
            frame = parse_server_frame(recorded.frame)
            if isinstance(frame, Event) and frame.ts:
                self.committed.append((now - epoch(frame.ts)) * 1000)
        for recorded in events:
            if recorded.topic == self.topic:
                self.done[recorded.seq] = now
        return await super().publish(events)


async def commit_deposits(
    url: str, redis_url: str, campaign_ids: list[int], rate: float, seconds: float
) -> int:
    """Deposit into the campaigns in turn, `rate` commits per second, for `seconds`."""
    db = Database(url)
    redis = Redis.from_url(redis_url)
    actor = command_line_actor()
    rng = random.Random(1)
    try:
        async with db.reader() as session:
            marketer_id = await session.scalar(select(Marketer.id).where(Marketer.name == MARKETER))
        assert marketer_id is not None
        publisher = TimedPublisher(db, redis, marketer_topic(marketer_id))
        count = int(rate * seconds)
        started = time.monotonic()
        for n in range(count):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            await deposit(
                db,
                publisher,
                marketer_id,
                actor,
                campaign_ids[n % len(campaign_ids)],
                rng.randrange(100, 10_000),
                "Benchmark deposit",
            )
        committed = percentiles(publisher.committed[int(WARM_UP_SECONDS * rate) :])
        print(json.dumps({"committed": committed, "done": publisher.done}))
        return count
    finally:
        await redis.aclose()
        await db.dispose()


# ---- the light subscribers' process -------------------------------------------------------


async def light_clients(base: str, token: str, topic: str, count: int) -> None:
    """`count` WebSocket subscribers of `topic` until stdin closes; then prints their
    commit → frame latencies (ms)."""
    url = base.replace("http", "ws", 1) + "/api/ws"
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    ready = 0

    async def one() -> None:
        nonlocal ready
        async with connect(url, additional_headers=headers, max_queue=None) as ws:
            await ws.send(encode(Subscribe(parse_topic(topic))))
            assert isinstance(parse_server_frame(await ws.recv()), Subscribed)
            ready += 1
            if ready == count:
                print("ready", flush=True)
            async for text in ws:
                frame = parse_server_frame(text)
                if isinstance(frame, Event) and frame.ts:
                    latencies.append((time.time() - epoch(frame.ts)) * 1000)

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    if not count:
        print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(percentiles(latencies)), flush=True)


# ---- the desktop --------------------------------------------------------------------------


class CellWatch:
    """Timestamps, per marketer-topic seq, of the frame's arrival and of its Balance cell."""

    def __init__(self, app: DesktopApp) -> None:
        window = app.window
        assert window is not None
        self.model = window.grid.model
        self.ts: dict[int, float] = {}  # seq -> commit (the event's ts)
        self.received: dict[int, float] = {}  # seq -> the network thread has the frame
        self.shown: dict[int, float] = {}  # seq -> dataChanged of the Balance cell
        bridge = window.bridge
        on_event = bridge.on_event

        def received(frame: EventFrame) -> None:  # the network thread
            self.received[frame.seq] = time.time()
            if frame.ts:
                self.ts[frame.seq] = epoch(frame.ts)
            on_event(frame)

        bridge.on_event = received  # type: ignore[method-assign]
        self.model.dataChanged.connect(self._changed)

    def _changed(self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Any) -> None:
        if roles or not top_left.column() <= COL_BALANCE <= bottom_right.column():
            return  # a highlight fading, or another column
        now = time.time()
        for row in range(top_left.row(), bottom_right.row() + 1):
            seq = self.model.rows[row].as_of_seq
            if seq is not None:
                self.shown.setdefault(seq, now)

    def results(self, after: float, done: dict[int, float]) -> dict[str, dict[str, float]]:
        """`done`: the marketer topic's seq -> when its transaction had committed."""
        seqs = [seq for seq in self.shown if seq in self.ts and self.ts[seq] >= after]
        return {
            "commit → cell": percentiles(
                [(self.shown[s] - done[s]) * 1000 for s in seqs if s in done]
            ),
            "the event's ts (in the transaction) → cell": percentiles(
                [(self.shown[s] - self.ts[s]) * 1000 for s in seqs]
            ),
            "commit → desktop has the frame": percentiles(
                [
                    (self.received[s] - done[s]) * 1000
                    for s in seqs
                    if s in self.received and s in done
                ]
            ),
            "frame → cell": percentiles(
                [(self.shown[s] - self.received[s]) * 1000 for s in seqs if s in self.received]
            ),
        }


async def campaigns_to_change(url: str) -> list[int]:
    """The marketer's campaigns that take deposits (not archived), in a shuffled order."""
    db = Database(url)
    try:
        async with db.reader() as session:
            ids = list(
                await session.scalars(
                    select(Campaign.id)
                    .join(Marketer, Marketer.id == Campaign.marketer_id)
                    .where(Marketer.name == MARKETER, Campaign.deactivated_at.is_(None))
                )
            )
    finally:
        await db.dispose()
    random.Random(2).shuffle(ids)
    return ids


def row(name: str, stats: dict[str, float]) -> str:
    if not stats:
        return f"| {name} | - | - | - | - | - | 0 |"
    return (
        f"| {name} | {stats['p50']:.1f} | {stats['p90']:.1f} | {stats['p95']:.1f} "
        f"| {stats['p99']:.1f} "
        f"| {stats['max']:.1f} | {stats['n']:,.0f} |"
    )


def run(args: argparse.Namespace) -> None:
    qt = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="pulse-bench-cell-") as tmp:
        directory = Path(tmp)
        url = f"sqlite+aiosqlite:///{directory}/pulse.sqlite3"
        seeded = asyncio.run(prepare(url, args.members, args.campaigns))
        campaign_ids = asyncio.run(campaigns_to_change(url))
        print(f"seeded {seeded.expected:,} campaigns of {MARKETER}", file=sys.stderr)
        with running_services(url, directory) as (base, redis_url):
            login = httpx.post(
                f"{base}/api/auth/login", json={"email": EMAIL, "password": PASSWORD}
            ).json()
            topic = marketer_topic(login["user"]["marketer_id"])
            me = [sys.executable, "-m", "bench.commit_to_cell"]
            clients = Process(
                "light clients",
                [*me, "--light-clients", base, login["access_token"], topic,
                 str(args.subscribers - 1)],
                pipes=True,
            ).start()  # fmt: skip
            settings = QSettings(str(directory / "desktop.ini"), QSettings.Format.IniFormat)
            cache = GridCache(directory / "grids")  # not the user's cache folder
            app = DesktopApp(Preferences(settings), quit_app_when_done=False, cache=cache)
            try:
                assert clients.stdout.readline().strip() == b"ready", "light clients failed"
                app.start(base, EMAIL, PASSWORD)
                wait_until(lambda: app.window is not None and app.window.loaded, 120)
                window = app.window
                assert window is not None
                wait_until(lambda: window.live_seq is not None, 60)
                watch = CellWatch(app)
                print(
                    f"{args.subscribers - 1} light clients and the desktop subscribed; "
                    f"committing {args.rate:g} deposits/s for {args.seconds:g} s",
                    file=sys.stderr,
                )
                started = time.time()
                with Process(
                    "committer",
                    [*me, "--commit", url, redis_url, ",".join(map(str, campaign_ids)),
                     str(args.rate), str(args.seconds)],
                    pipes=True,
                ) as committer:  # fmt: skip
                    # The desktop's events are handled while waiting.
                    wait_until(lambda: not committer.alive(), args.seconds + 120)
                    output = committer.stdout.read()
                assert committer.returncode == 0, "the committing process failed"
                report = json.loads(output.strip().splitlines()[-1])
                committed = report["committed"]
                done = {int(seq): at for seq, at in report["done"].items()}
                with contextlib.suppress(TimeoutError):  # the last commits' cells
                    wait_until(lambda: max(watch.shown, default=0) >= max(watch.ts, default=0), 10)
                results = watch.results(started + WARM_UP_SECONDS, done)
            finally:
                app.quit()
                if app.window is not None:
                    app.window.deleteLater()
                app.deleteLater()
                QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
                output = clients.communicate(timeout=60)
                clients.stop()
            light = json.loads(output.strip().splitlines()[-1] if output.strip() else "{}")
    del qt
    print(
        f"\n{args.subscribers} subscribers of one marketer topic ({args.subscribers - 1} light "
        f"WebSocket clients + 1 desktop grid of {seeded.expected:,} campaigns), "
        f"{args.rate:g} commits/s for {args.seconds:g} s (the first {WARM_UP_SECONDS:g} s not "
        "counted), milliseconds:\n"
    )
    print("| path | p50 | p90 | p95 | p99 | max | samples |")
    print("|---|---|---|---|---|---|---|")
    print(row("the event's ts (in the transaction) → the commit done", committed))
    for name, stats in results.items():
        print(row(name, stats))
    print(row("the event's ts → light client has the frame", light))
    p99 = results["commit → cell"].get("p99", float("inf"))
    verdict = "met" if p99 <= GOAL_P99_MS else "NOT met"
    print(
        f"\ngoal: commit → cell p99 ≤ {GOAL_P99_MS:.0f} ms with 100 subscribers "
        f"({p99:.1f} ms): {verdict}"
    )
    print(json.dumps({"results": results, "committed": committed, "light_clients": light}))


def main() -> None:
    if sys.argv[1:2] == ["--commit"]:
        url, redis_url, ids, rate, seconds = sys.argv[2:7]
        campaign_ids = [int(part) for part in ids.split(",")]
        asyncio.run(commit_deposits(url, redis_url, campaign_ids, float(rate), float(seconds)))
        return
    if sys.argv[1:2] == ["--light-clients"]:
        base, token, topic, count = sys.argv[2:6]
        asyncio.run(light_clients(base, token, topic, int(count)))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=20, help="commits per second")
    parser.add_argument("--seconds", type=float, default=30, help="how long to commit")
    parser.add_argument("--subscribers", type=int, default=100, help="the desktop included")
    parser.add_argument("--campaigns", type=int, default=1000, help="campaigns added to Acme's")
    parser.add_argument("--members", type=int, default=2_000, help="demo members to seed")
    run(parser.parse_args())


if __name__ == "__main__":
    main()

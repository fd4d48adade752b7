"""A deployment of real processes for fault injection: redis-server, two servers, two workers.

Every process is a child of the test run, started as a person would start it
(`python -m pulse_cli server|worker` with `PULSE_*` variables), logging to a file of its own.
Only processes started here are ever signalled, by their pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import insert, select

from pulse_cli.embedded_redis import EmbeddedRedis
from pulse_cli.process import child_preexec
from pulse_data.database import Database
from pulse_data.models import (
    Bid,
    Campaign,
    LedgerEntry,
    Marketer,
    Target,
    TargetTrait,
    TargetTraitGroup,
    Trait,
    TraitGroup,
)
from pulse_data.population import ensure_bands, populate_target
from pulse_data.seed import seed_demo
from tests.backend import free_port
from tests.conftest import build_latest_schema, run_in_new_loop
from tests.netproxy import TcpProxy

T = TypeVar("T")
PULSE = [sys.executable, "-m", "pulse_cli"]
START_TIMEOUT = 60.0
EVERYONE_TITLE = "Everyone (fault tests)"


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def status_of(url: str, timeout: float = 2.0) -> int | None:
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError:
        return None


@dataclass
class Child:
    """One `python -m pulse_cli <command>` process and its log file."""

    name: str
    command: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    port: int | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start {self.name} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*PULSE, self.command],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=child_preexec,
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL this child (and only it): no clean-up of any kind runs."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def rss_kb(self) -> int:
        """Resident memory of the process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS for {self.name}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/ws"

    def ready(self) -> bool:
        return status_of(f"{self.url}/readyz") == 200


@dataclass
class Cluster:
    """Redis, two servers and two workers sharing one database; see the module docstring."""

    backend: str
    directory: Path
    database_url: str  # what the processes use (through the proxy on PostgreSQL)
    direct_database_url: str  # what the test itself uses
    members: int
    env_overrides: dict[str, str] = field(default_factory=dict)
    redis: EmbeddedRedis | None = None
    servers: list[Child] = field(default_factory=list)
    workers: list[Child] = field(default_factory=list)
    proxy: TcpProxy | None = None
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    everyone_campaign_id: int = 0
    everyone_population: int = 0

    @property
    def database_url_for_tests(self) -> str:
        """The URL the processes use: the test's own writes go through the proxy too."""
        return self.database_url

    @property
    def redis_url(self) -> str:
        assert self.redis is not None
        return self.redis.url

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_")}
        return {
            **base,
            "PULSE_DATABASE_URL": self.database_url,
            "PULSE_REDIS_URL": self.redis_url,
            "PULSE_SECRET_KEY": self.secret_key,
            "PULSE_DATA_DIR": str(self.directory / "data"),
            **self.env_overrides,
            **extra,
        }

    def start(self) -> None:
        self.redis = EmbeddedRedis(self.directory / "redis")
        self.redis.start()
        for n in range(2):
            port = free_port()
            self.servers.append(
                Child(
                    f"server-{n}",
                    "server",
                    self.env(PULSE_PORT=str(port)),
                    self.directory / f"server-{n}.log",
                    port=port,
                )
            )
            self.workers.append(
                Child(f"worker-{n}", "worker", self.env(), self.directory / f"worker-{n}.log")
            )
        for child in [*self.servers, *self.workers]:
            child.start()
        for server in self.servers:
            self.wait_ready(server)
        self.wait_workers_started()

    def wait_ready(self, server: Child, timeout: float = START_TIMEOUT) -> None:
        def ready() -> bool:
            if not server.alive():
                raise AssertionError(f"{server.name} exited:\n{server.log()[-3000:]}")
            return server.ready()

        try:
            wait_until(ready, timeout, f"{server.name} to be ready")
        except AssertionError as exc:
            try:
                last = httpx.get(f"{server.url}/readyz", timeout=5).text
            except httpx.HTTPError as error:
                last = repr(error)
            raise AssertionError(f"{exc}; /readyz: {last}\n{server.log()[-3000:]}") from None

    def wait_workers_started(self, timeout: float = START_TIMEOUT) -> None:
        def started() -> bool:
            for worker in self.workers:
                if not worker.alive():
                    raise AssertionError(f"{worker.name} exited:\n{worker.log()[-3000:]}")
            return all("Starting worker" in worker.log() for worker in self.workers)

        wait_until(started, timeout, "the workers to start")

    def ensure_running(self) -> None:
        """Restart whatever a previous test left stopped, and wait until all of it is ready."""
        assert self.redis is not None
        if self.redis.process is None or self.redis.process.poll() is not None:
            self.redis.start()
        if self.proxy is not None:
            self.proxy.restore()
        for child in [*self.servers, *self.workers]:
            if not child.alive():
                child.start()
        for server in self.servers:
            self.wait_ready(server)

    async def restart_server(self, server: Child, timeout: float = START_TIMEOUT) -> None:
        """Start a stopped server again and wait (without blocking the loop) until it is ready.

        Children are started from this thread, never from a helper thread: their parent-death
        signal fires when the thread that started them ends.
        """
        server.start()
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(server.ready):
            assert server.alive() and time.monotonic() < deadline, server.log()[-3000:]
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        for child in [*self.servers, *self.workers]:
            child.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.proxy is not None:
            self.proxy.stop()

    def logs(self) -> str:
        return "\n".join(
            f"----- {child.name} -----\n{child.log()[-4000:]}"
            for child in [*self.servers, *self.workers]
        )

    def worker_running(self, job_name: str) -> Child | None:
        """The worker whose log shows `job_name` started and not yet finished."""
        for worker in self.workers:
            lines = [line for line in worker.log().splitlines() if job_name in line]
            if lines and "→" in lines[-1]:
                return worker
        return None


async def prepare_database(url: str, members: int) -> tuple[int, int]:
    """Empty the database, load the demo data, and add a not-launched campaign whose target
    holds every member and is already populated; returns (its id, the target's population)."""
    db = Database(url)
    try:
        async with db.write_engine.begin() as connection:
            await connection.run_sync(build_latest_schema)
        await seed_demo(db, members=members)
        async with db.writer() as session:
            marketer_id = await session.scalar(
                select(Marketer.id).where(Marketer.name == "Acme Outdoor")
            )
            target_id = (
                await session.execute(
                    insert(Target)
                    .values(marketer_id=marketer_id, title=EVERYONE_TITLE)
                    .returning(Target.id)
                )
            ).scalar_one()
            groups = dict((await session.execute(select(TraitGroup.name, TraitGroup.id))).all())
            await session.execute(
                insert(TargetTraitGroup).values(
                    target_id=target_id, trait_group_id=groups["Age"], position=0
                )
            )
            ages = (
                await session.scalars(select(Trait.id).where(Trait.trait_group_id == groups["Age"]))
            ).all()
            await session.execute(
                insert(TargetTrait), [{"target_id": target_id, "trait_id": t} for t in ages]
            )
            bands = await ensure_bands(session, target_id)
            campaign_id = (
                await session.execute(
                    insert(Campaign)
                    .values(marketer_id=marketer_id, target_id=target_id, title=EVERYONE_TITLE)
                    .returning(Campaign.id)
                )
            ).scalar_one()
            await session.execute(
                insert(Bid),
                [
                    {
                        "campaign_id": campaign_id,
                        "band_id": band_id,
                        "offer_amount_cents": 100,
                        "marketer_cost_cents": 150,
                    }
                    for band_id in bands.values()
                ],
            )
            await session.execute(
                insert(LedgerEntry).values(
                    campaign_id=campaign_id, amount_cents=1_000_000, description="Deposit"
                )
            )
            await session.commit()
        result = await populate_target(db, None, target_id, batch_size=5000)
        return campaign_id, result.population
    finally:
        await db.dispose()


def run_async(coroutine: Any) -> Any:
    """Run a coroutine on a fresh loop in another thread (the test's own loop may be running)."""
    return run_in_new_loop(lambda: coroutine)


def kill_quietly(children: list[Child]) -> None:
    for child in children:
        with contextlib.suppress(Exception):
            child.stop()

"""A deployment of real processes for fault injection: redis-server, two servers, two workers.

Every process is a child of the test run, started as a person would start it
(`python -m pulse_cli server|worker` with `PULSE_*` variables), logging to a file of its own.
Only processes started here are ever signalled, each in a process group of its own
(see pulse_cli/process.py).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from pulse_cli.embedded_redis import EmbeddedRedis
from pulse_cli.process import (
    Process,
    free_port,
    pulse_command,
    stop_all,
    wait_ready,
    wait_worker_started,
)
from pulse_cli.process import wait_until as wait_until  # the fault tests import it from here
from pulse_core import names
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
from tests.conftest import build_latest_schema, run_in_new_loop
from tests.netproxy import TcpProxy

START_TIMEOUT = 60.0
# How much of each process's log a failing test prints (after the quiet lines below).
LOG_TAIL_CHARS = 12_000
# A worker's periodic jobs log a start and an end every few seconds, mostly having done nothing;
# those lines are left out of a failing test's logs so that the lines that tell its story fit.
PERIODIC_JOBS = (names.JOB_ACTIVATE_OFFERS, names.JOB_RELAY_EVENTS, names.JOB_SEND_MAIL)
IDLE_RESULTS = ("{}", ": 0}")
EVERYONE_TITLE = "Everyone (fault tests)"


@dataclass
class Child(Process):
    """One `pulse server` or `pulse worker` of the deployment (a server has a `port`)."""

    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/ws"


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
                    pulse_command("server"),
                    self.env(PULSE_PORT=str(port)),
                    self.directory / f"server-{n}.log",
                    port=port,
                )
            )
            self.workers.append(
                Child(
                    f"worker-{n}",
                    pulse_command("worker"),
                    self.env(),
                    self.directory / f"worker-{n}.log",
                )
            )
        for child in [*self.servers, *self.workers]:
            child.start()
        for server in self.servers:
            self.wait_ready(server)
        self.wait_workers_started()

    def wait_ready(self, server: Child, timeout: float = START_TIMEOUT) -> None:
        wait_ready(server.url, timeout, process=server)

    def wait_workers_started(self, timeout: float = START_TIMEOUT) -> None:
        for worker in self.workers:
            wait_worker_started(worker, timeout)

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
        await asyncio.to_thread(wait_ready, server.url, timeout, server)

    def stop(self) -> None:
        stop_all([*self.servers, *self.workers], timeout=15)
        if self.redis is not None:
            self.redis.stop()
        if self.proxy is not None:
            self.proxy.stop()

    def logs(self) -> str:
        """The end of every process's log, without the periodic jobs' idle lines."""
        return "\n".join(
            f"----- {child.name} -----\n{telling_lines(child.log())[-LOG_TAIL_CHARS:]}"
            for child in [*self.servers, *self.workers]
        )

    def worker_running(self, job_name: str) -> Child | None:
        """The worker whose log shows `job_name` started and not yet finished."""
        for worker in self.workers:
            lines = [line for line in worker.log().splitlines() if job_name in line]
            if lines and "→" in lines[-1]:
                return worker
        return None


def telling_lines(log: str) -> str:
    """`log` without the lines of periodic jobs starting, or ending having done nothing."""

    def idle(line: str) -> bool:
        if not any(f" {job}" in line for job in PERIODIC_JOBS):
            return False
        return "→" in line or line.rstrip().endswith(IDLE_RESULTS)

    return "\n".join(line for line in log.splitlines() if not idle(line))


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

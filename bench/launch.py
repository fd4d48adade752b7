"""Launch → `offers_created` time for a target of 20,000 members, through the real processes.

Run: `.venv/bin/python -m bench.launch` (SQLite in a temporary directory), or
`.venv/bin/python -m bench.launch --database-url postgresql+asyncpg://postgres@127.0.0.1/pulse_bench
--reset` on an EMPTY PostgreSQL database that it may wipe. It starts an embedded redis-server,
`pulse server` and `pulse worker` as child processes, seeds the demo data plus one campaign whose
target every member matches, subscribes a WebSocket client to the marketer topic, clicks Launch
over REST and prints how long `target_populated` and `offers_created` took.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError
from websockets.asyncio.client import connect

from pulse_cli.embedded_redis import EmbeddedRedis
from pulse_cli.process import Process, pulse_command, running
from pulse_cli.process import free_port as free_port  # bench.ingest, bench.desktop_login use it
from pulse_cli.process import wait_ready as wait_ready
from pulse_core.names import EventName
from pulse_core.protocol import Event, Subscribe, Subscribed, encode, parse_server_frame
from pulse_core.topics import parse_topic
from pulse_data.database import Database
from pulse_data.migrate import upgrade_database
from pulse_data.models import (
    Base,
    Bid,
    Campaign,
    LedgerEntry,
    Marketer,
    Member,
    Target,
    TargetTrait,
    TargetTraitGroup,
    Trait,
    TraitGroup,
)
from pulse_data.population import ensure_bands
from pulse_data.seed import seed_demo

EVERYONE = "Everyone (benchmark)"
GOAL_SECONDS = 10.0  # launch -> offers_created, 100,000 members, PostgreSQL


def database_options(parser: argparse.ArgumentParser) -> None:
    """The benchmarks' `--database-url` and `--reset`."""
    parser.add_argument(
        "--database-url", help="an empty database to use (default: SQLite in a temp dir)"
    )
    parser.add_argument(
        "--reset", action="store_true", help="drop every table of --database-url first"
    )


def database_url(args: argparse.Namespace, directory: str) -> str:
    """`--database-url`, else a SQLite file in `directory`."""
    return str(args.database_url or f"sqlite+aiosqlite:///{directory}/pulse.sqlite3")


async def wipe(url: str) -> None:
    """Drop every table of the database (the benchmarks' `--reset`)."""
    db = Database(url)
    try:
        async with db.write_engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
            await connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    finally:
        await db.dispose()


async def prepare(url: str, members: int, reset: bool) -> tuple[int, int]:
    """Seed the demo data and a campaign whose target holds every member."""
    if reset:
        await wipe(url)
    db = Database(url)
    try:
        upgrade_database(url)
        await seed_demo(db, members=members)
        async with db.writer() as session:
            marketer_id = await session.scalar(
                select(Marketer.id).where(Marketer.name == "Acme Outdoor")
            )
            assert marketer_id is not None
            target_id = (
                await session.execute(
                    insert(Target)
                    .values(marketer_id=marketer_id, title=EVERYONE)
                    .returning(Target.id)
                )
            ).scalar_one()
            groups = dict((await session.execute(select(TraitGroup.name, TraitGroup.id))).all())
            traits = (await session.execute(select(Trait.id, Trait.trait_group_id))).all()
            order = ["Age", "Region", "Household"]  # every member has an age: all are in a band
            for position, name in enumerate(order):
                await session.execute(
                    insert(TargetTraitGroup).values(
                        target_id=target_id, trait_group_id=groups[name], position=position
                    )
                )
            accepted = [tid for tid, gid in traits if gid == groups["Age"]] + [
                tid for tid, gid in traits if gid in (groups["Region"], groups["Household"])
            ][::2]
            await session.execute(
                insert(TargetTrait), [{"target_id": target_id, "trait_id": tid} for tid in accepted]
            )
            bands = await ensure_bands(session, target_id)
            campaign_id = (
                await session.execute(
                    insert(Campaign)
                    .values(marketer_id=marketer_id, target_id=target_id, title="Launch benchmark")
                    .returning(Campaign.id)
                )
            ).scalar_one()
            await session.execute(
                insert(Bid),
                [
                    {
                        "campaign_id": campaign_id,
                        "band_id": band_id,
                        "offer_amount_cents": 100 - 10 * level,
                        "marketer_cost_cents": 150 - 10 * level,
                    }
                    for level, band_id in sorted(bands.items())
                ],
            )
            await session.execute(
                insert(LedgerEntry).values(
                    campaign_id=campaign_id, amount_cents=1_000_000, description="Deposit"
                )
            )
            member_count = len((await session.execute(select(Member.id))).all())
            await session.commit()
        return campaign_id, member_count
    finally:
        await db.dispose()


@contextmanager
def running_backend(
    database_url: str, directory: Path, *, worker: bool = True, **env: str
) -> Iterator[tuple[str, str]]:
    """An embedded redis-server, `pulse server` and (if `worker`) `pulse worker` on
    `database_url`, printing to this terminal; yields (the server's URL, the Redis URL) once the
    server is ready and stops them all on leaving. `env`: more settings (PULSE_...="...")."""
    with EmbeddedRedis(directory / "redis") as redis:
        port = free_port()
        settings = {
            **os.environ,
            "PULSE_DATABASE_URL": database_url,
            "PULSE_REDIS_URL": redis.url,
            "PULSE_SECRET_KEY": secrets.token_urlsafe(48),
            "PULSE_PORT": str(port),
            **env,
        }
        server = Process("server", pulse_command("server"), settings)
        parts = [server]
        if worker:
            parts.append(Process("worker", pulse_command("worker"), settings))
        with running(*parts, timeout=20):
            base = f"http://127.0.0.1:{port}"
            wait_ready(base, process=server)
            yield base, redis.url


async def measure(base: str, campaign_id: int, timeout: float) -> dict[str, float | int]:
    async with httpx.AsyncClient(base_url=base) as http:
        login = (
            await http.post(
                "/api/auth/login", json={"email": "alice@acme.example", "password": "pulse-demo"}
            )
        ).json()
        headers = {"Authorization": f"Bearer {login['access_token']}"}
        topic = f"marketer:{login['user']['marketer_id']}:campaigns"
        ws_url = base.replace("http", "ws", 1) + "/api/ws"
        async with connect(ws_url, additional_headers=headers) as ws:
            await ws.send(encode(Subscribe(parse_topic(topic))))
            assert isinstance(parse_server_frame(await ws.recv()), Subscribed)
            started = time.perf_counter()
            response = await http.post(f"/api/campaigns/{campaign_id}/launch", headers=headers)
            accepted = time.perf_counter() - started
            assert response.status_code == 202, response.text
            result: dict[str, float | int] = {"launch_request_s": accepted}
            async with asyncio.timeout(timeout):
                while True:
                    frame = parse_server_frame(await ws.recv())
                    if not isinstance(frame, Event) or frame.campaign_id != campaign_id:
                        continue
                    if frame.event == EventName.TARGET_POPULATED:
                        result["target_populated_s"] = time.perf_counter() - started
                        result["target_population"] = (frame.stats or {})["target_population"]
                    if frame.event == EventName.OFFERS_CREATED:
                        result["offers_created_s"] = time.perf_counter() - started
                        result["offers"] = frame.count or 0
                        return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    database_options(parser)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pulse-bench-") as directory:
        url = database_url(args, directory)
        seeding = time.perf_counter()
        try:
            campaign_id, members = asyncio.run(prepare(url, args.members, args.reset))
        except (DBAPIError, OSError) as exc:
            reason = getattr(exc, "orig", None) or exc
            parser.exit(
                2,
                f"cannot prepare the database at {url}: {reason}\n"
                "Give an existing, empty database (PostgreSQL: createdb pulse_bench).\n",
            )
        print(f"seeded {members} members in {time.perf_counter() - seeding:.1f} s")
        with running_backend(url, Path(directory)) as (base, _redis_url):
            result = asyncio.run(measure(base, campaign_id, args.timeout))
    backend = url.split(":", 1)[0]
    print(
        f"\n{backend}: target of {result['target_population']} members; "
        f"launch request {result['launch_request_s'] * 1000:.0f} ms; "
        f"target_populated after {result['target_populated_s']:.2f} s; "
        f"offers_created ({result['offers']} offers) after {result['offers_created_s']:.2f} s"
    )
    print(
        f"goal: a 100,000-member target populated and its offers created within "
        f"{GOAL_SECONDS:.0f} s of the launch on PostgreSQL; this run: "
        f"{result['offers_created_s']:.2f} s for {result['target_population']:,} members"
    )
    print(json.dumps({"backend": backend, **result}))


if __name__ == "__main__":
    main()

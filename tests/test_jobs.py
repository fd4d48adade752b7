"""The arq jobs on a real worker and the embedded Redis: what subscribers of the channel receive."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.constants import retry_key_prefix
from arq.jobs import Job
from arq.worker import FailedJobs
from sqlalchemy import select, update

from pulse_core import names
from pulse_core.config import Settings
from pulse_core.names import EVENTS_CHANNEL, AuditAction, EventName, UpdateReason
from pulse_core.stats import PopulationStatus
from pulse_core.topics import campaign_topic
from pulse_data import audit, eventlog
from pulse_data.database import Database
from pulse_data.migrate import upgrade_database
from pulse_data.models import AuditEntry, StoredEvent, Target, utcnow
from pulse_data.offers import create_offers
from pulse_data.population import (
    enqueue_population,
    mark_populating,
    populate_target,
    population_key,
)
from pulse_data.pubsub import EventPublisher, campaign_transaction, decode_announcement
from tests.conftest import TEST_SECRET
from tests.factories import make_campaign, make_population, make_world, run_jobs, stored_events
from workers import jobs
from workers.settings import MAX_TRIES, worker_settings

Frame = dict[str, Any]


@pytest.fixture
async def arq_pool(redis_url: str) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=names.QUEUE_NAME)
    yield pool
    await pool.aclose()


class ChannelListener:
    """A real Redis pub/sub client on the events channel, as every server runs one."""

    def __init__(self, redis_url: str) -> None:
        self.client = aioredis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub()
        self.frames: list[Frame] = []

    async def start(self) -> None:
        await self.pubsub.subscribe(EVENTS_CHANNEL)
        confirmation = await self.pubsub.get_message(timeout=5)
        assert confirmation is not None and confirmation["type"] == "subscribe"

    async def wait_for(self, wanted: Callable[[Frame], bool], timeout: float = 5.0) -> Frame:
        """The first frame (already received or arriving within `timeout`) that is `wanted`."""
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames:
                    if wanted(frame):
                        return frame
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    self.frames.extend(
                        json.loads(text) for _, _, text in decode_announcement(message["data"])
                    )

    async def drain(self) -> list[Frame]:
        while message := await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2):
            self.frames.extend(
                json.loads(text) for _, _, text in decode_announcement(message["data"])
            )
        return self.frames

    async def close(self) -> None:
        await self.pubsub.aclose()
        await self.client.aclose()


@pytest.fixture
async def listener(redis_url: str) -> AsyncIterator[ChannelListener]:
    channel = ChannelListener(redis_url)
    await channel.start()
    yield channel
    await channel.close()


def _is(event: EventName, topic: str) -> Callable[[Frame], bool]:
    return lambda frame: frame["event"] == event and frame["topic"] == topic


async def test_offers_created_reaches_a_redis_subscriber_of_the_campaign_topic_within_5s(
    db: Database, settings: Settings, arq_pool: ArqRedis, listener: ChannelListener
) -> None:
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)
    await populate_target(db, None, world.target_id)

    await arq_pool.enqueue_job(names.JOB_CREATE_OFFERS, campaign)
    worker = asyncio.create_task(run_jobs(settings))
    frame = await listener.wait_for(_is(EventName.OFFERS_CREATED, campaign_topic(campaign)))
    await worker

    assert frame["campaign_id"] == campaign and frame["count"] == 6
    assert frame["stats"]["pending_offers"] == 6


async def test_second_run_inserts_nothing_and_publishes_only_campaign_updated(
    db: Database, settings: Settings, arq_pool: ArqRedis, listener: ChannelListener
) -> None:
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)
    await populate_target(db, None, world.target_id)
    first = await arq_pool.enqueue_job(names.JOB_CREATE_OFFERS, campaign, request_id="r1")
    await run_jobs(settings)
    second = await arq_pool.enqueue_job(names.JOB_CREATE_OFFERS, campaign, request_id="r2")
    await run_jobs(settings)

    assert first is not None and second is not None
    assert await first.result(timeout=5) == {"campaign_id": campaign, "created": 6}
    assert await second.result(timeout=5) == {"campaign_id": campaign, "created": 0}
    await listener.wait_for(lambda frame: frame.get("request_id") == "r2")
    frames = [f for f in await listener.drain() if f["topic"] == campaign_topic(campaign)]
    assert [(f["event"], f.get("count"), f["request_id"]) for f in frames] == [
        (EventName.OFFERS_CREATED, 6, "r1"),
        (EventName.CAMPAIGN_UPDATED, None, "r1"),
        (EventName.CAMPAIGN_UPDATED, None, "r2"),
    ]
    assert frames[-1]["created"] == 0 and frames[-1]["reason"] == UpdateReason.OFFERS_REFRESHED


async def test_offer_job_defers_while_the_target_populates_then_creates_every_offer(
    db: Database, settings: Settings, arq_pool: ArqRedis, listener: ChannelListener
) -> None:
    world = await make_world(db)
    await make_population(db, world, per_band=10)
    campaign = await make_campaign(db, world)
    assert await mark_populating(db, None, world.target_id, only_if_not_populated=True)

    offers_job = await arq_pool.enqueue_job(names.JOB_CREATE_OFFERS, campaign)
    await arq_pool.enqueue_job(
        names.JOB_POPULATE_TARGET, world.target_id, _defer_by=timedelta(seconds=0.3)
    )
    await run_jobs(settings)

    assert offers_job is not None
    assert await offers_job.result(timeout=5) == {"campaign_id": campaign, "created": 30}
    info = await offers_job.info()
    assert info is not None and info.job_try is not None and info.job_try > 1
    populated = await listener.wait_for(_is(EventName.TARGET_POPULATED, campaign_topic(campaign)))
    created = await listener.wait_for(_is(EventName.OFFERS_CREATED, campaign_topic(campaign)))
    assert populated["seq"] < created["seq"] and created["count"] == 30


async def test_offer_job_populates_a_target_that_was_never_populated(
    db: Database, settings: Settings, arq_pool: ArqRedis
) -> None:
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)

    job = await arq_pool.enqueue_job(names.JOB_CREATE_OFFERS, campaign)
    await run_jobs(settings)

    assert job is not None
    assert await job.result(timeout=5) == {"campaign_id": campaign, "created": 6}
    async with db.reader() as session:
        status = await session.scalar(
            select(Target.population_status).where(Target.id == world.target_id)
        )
    assert status == PopulationStatus.POPULATED


async def test_activation_job_makes_due_offers_current_and_announces_it(
    db: Database, settings: Settings, arq_pool: ArqRedis, listener: ChannelListener
) -> None:
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)
    await populate_target(db, None, world.target_id)
    await create_offers(db, None, campaign, activation_delay=timedelta(0))

    job = await arq_pool.enqueue_job(names.JOB_ACTIVATE_OFFERS)
    await run_jobs(settings)

    assert job is not None and await job.result(timeout=5) == {"activated": 6}
    frame = await listener.wait_for(_is(EventName.CAMPAIGN_UPDATED, campaign_topic(campaign)))
    assert frame["reason"] == UpdateReason.OFFERS_ACTIVATED
    assert frame["stats"]["current_offers"] == 6


async def _unpublished_event(db: Database, campaign: int, age: timedelta) -> None:
    """A committed event whose publishing failed (no Redis), made `age` old."""
    async with campaign_transaction(db, EventPublisher(db, None)) as events:
        events.broadcast_campaign_updated(campaign, reason=UpdateReason.LAUNCHED)
    async with db.writer() as session:
        await session.execute(update(StoredEvent).values(created_at=utcnow() - age))
        await session.commit()


async def test_relay_publishes_events_whose_publish_failed_and_marks_them(
    db: Database, settings: Settings, arq_pool: ArqRedis, listener: ChannelListener
) -> None:
    world = await make_world(db)
    campaign = await make_campaign(db, world)
    await _unpublished_event(db, campaign, timedelta(minutes=1))

    first = await arq_pool.enqueue_job(names.JOB_RELAY_EVENTS)
    await run_jobs(settings)
    frame = await listener.wait_for(_is(EventName.CAMPAIGN_UPDATED, campaign_topic(campaign)))
    second = await arq_pool.enqueue_job(names.JOB_RELAY_EVENTS)
    await run_jobs(settings)

    assert frame["seq"] == 1 and frame["reason"] == UpdateReason.LAUNCHED
    assert first is not None and await first.result(timeout=5) == {"relayed": 2}
    assert second is not None and await second.result(timeout=5) == {"relayed": 0}
    async with db.reader() as session:
        assert await eventlog.unpublished(session, created_before=utcnow(), limit=10) == []


async def test_relay_leaves_events_that_may_still_be_in_flight(
    db: Database, settings: Settings, arq_pool: ArqRedis
) -> None:
    world = await make_world(db)
    campaign = await make_campaign(db, world)
    await _unpublished_event(db, campaign, timedelta(0))
    job = await arq_pool.enqueue_job(names.JOB_RELAY_EVENTS)
    await run_jobs(settings)
    assert job is not None and await job.result(timeout=5) == {"relayed": 0}


async def test_prune_forgets_only_published_events_past_retention(
    db: Database, settings: Settings, arq_pool: ArqRedis
) -> None:
    world = await make_world(db)
    campaign = await make_campaign(db, world)
    await _unpublished_event(db, campaign, timedelta(days=settings.event_retention_days + 1))
    async with campaign_transaction(db, None) as events:
        events.broadcast_campaign_updated(campaign)
    async with db.writer() as session:
        old = utcnow() - timedelta(days=settings.event_retention_days + 1)
        await session.execute(
            update(StoredEvent).where(StoredEvent.seq == 1).values(published=True, created_at=old)
        )
        await session.commit()

    job = await arq_pool.enqueue_job(names.JOB_PRUNE_EVENTS)
    await run_jobs(settings)

    assert job is not None and await job.result(timeout=5) == {"pruned": 2}
    async with db.reader() as session:
        left = (await session.scalars(select(StoredEvent.seq).order_by(StoredEvent.id))).all()
        assert list(left) == [2, 2]
        assert await eventlog.head(session, campaign_topic(campaign)) == 2


def test_demo_traffic_is_scheduled_only_in_demo_mode(settings: Settings) -> None:
    def scheduled(demo: bool) -> set[str]:
        cls = worker_settings(settings.model_copy(update={"demo": demo}))
        return {job.name for job in cls.cron_jobs}  # type: ignore[attr-defined]

    always = {
        names.JOB_ACTIVATE_OFFERS,
        names.JOB_RELAY_EVENTS,
        names.JOB_PRUNE_EVENTS,
        names.JOB_PRUNE_AUDIT,
        names.JOB_SEND_MAIL,
    }
    assert scheduled(False) == always
    assert scheduled(True) == always | {names.JOB_DEMO_TRAFFIC}


def test_worker_settings_use_the_queue_and_redis_of_the_deployment(settings: Settings) -> None:
    cls: Any = worker_settings(settings)
    assert cls.queue_name == names.QUEUE_NAME
    assert settings.redis_url is not None and settings.redis_url.startswith("unix://")
    assert cls.redis_settings.unix_socket_path == settings.redis_url.removeprefix("unix://")
    assert {function.name for function in cls.functions} == {
        names.JOB_POPULATE_TARGET,
        names.JOB_CREATE_OFFERS,
    }


async def test_worker_process_stops_cleanly_on_sigterm(redis_url: str, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'worker.sqlite3'}"
    upgrade_database(database_url)
    env = {
        **os.environ,
        "PULSE_DATABASE_URL": database_url,
        "PULSE_REDIS_URL": redis_url,
        "PULSE_SECRET_KEY": TEST_SECRET,
    }
    code = "from pulse_core.config import Settings; from workers.main import run_worker; "
    code += "run_worker(Settings())"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, env=env, stderr=asyncio.subprocess.PIPE
    )
    client = aioredis.Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(20):
            while not await client.exists(names.QUEUE_NAME + ":health-check"):
                assert process.returncode is None, "the worker exited before it was ready"
                await asyncio.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            _, stderr = await process.communicate()
    finally:
        await client.aclose()
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode(errors="replace")


async def test_worker_start_requeues_a_population_lost_with_redis(
    db: Database, settings: Settings
) -> None:
    """A target left `populating` (its job died with a Redis that kept nothing) gets populated."""
    world = await make_world(db)
    await make_population(db, world)
    await make_campaign(db, world)
    async with db.writer() as session:
        await session.execute(
            update(Target)
            .where(Target.id == world.target_id)
            .values(population_status=PopulationStatus.POPULATING.value)
        )
        await session.commit()

    await run_jobs(settings)

    async with db.reader() as session:
        status = await session.scalar(
            select(Target.population_status).where(Target.id == world.target_id)
        )
    assert status == PopulationStatus.POPULATED


async def _population_story(db: Database, campaign: int) -> list[str]:
    """The population statuses an active campaign's dashboard was told, in order."""
    story = []
    for event in await stored_events(db, campaign_topic(campaign)):
        frame = json.loads(event.frame)
        if frame["event"] == EventName.TARGET_POPULATED:
            story.append(PopulationStatus.POPULATED.value)
        elif frame.get("reason") == UpdateReason.TARGET_STATUS:
            story.append(frame["population_status"])
    return story


async def _target_status(db: Database, target_id: int) -> str | None:
    async with db.reader() as session:
        return await session.scalar(select(Target.population_status).where(Target.id == target_id))


async def test_a_population_asked_for_by_launch_offers_and_recovery_is_queued_once(
    db: Database, settings: Settings, arq_pool: ArqRedis
) -> None:
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)
    assert await mark_populating(db, None, world.target_id, only_if_not_populated=True)

    assert await enqueue_population(db, arq_pool, world.target_id)
    assert not await enqueue_population(db, arq_pool, world.target_id)
    assert await jobs.recover_interrupted_populations({"db": db, "redis": arq_pool}) == []
    queued = await arq_pool.queued_jobs(queue_name=names.QUEUE_NAME)
    assert [job.function for job in queued] == [names.JOB_POPULATE_TARGET]
    await run_jobs(settings)  # its start-up recovery asks once more

    assert await _target_status(db, world.target_id) == PopulationStatus.POPULATED
    assert await _population_story(db, campaign) == ["populating", "populated"]


async def test_a_population_job_run_again_after_its_work_was_done_changes_and_tells_nothing(
    db: Database, settings: Settings, arq_pool: ArqRedis
) -> None:
    """The job of a worker killed after the population committed, retried once its lease ends."""
    world = await make_world(db)
    await make_population(db, world)
    campaign = await make_campaign(db, world)
    assert await mark_populating(db, None, world.target_id, only_if_not_populated=True)
    assert await enqueue_population(db, arq_pool, world.target_id)
    # The job's work, done and committed as the job would do it; arq never heard of it.
    await populate_target(db, None, world.target_id, previous=population_key(None))
    async with db.reader() as session:
        populated_at = await session.scalar(
            select(Target.last_populated_at).where(Target.id == world.target_id)
        )
    [queued] = await arq_pool.queued_jobs(queue_name=names.QUEUE_NAME)

    await run_jobs(settings)

    job = Job(str(queued.job_id), arq_pool, _queue_name=names.QUEUE_NAME)
    assert await job.result(timeout=5) == {"target_id": world.target_id, "already_done": True}
    assert await _population_story(db, campaign) == ["populating", "populated"]
    async with db.reader() as session:
        target = await session.get(Target, world.target_id)
        assert target is not None and target.last_populated_at == populated_at
        assert target.population_status == PopulationStatus.POPULATED


async def test_a_population_whose_job_gave_up_is_queued_again(
    db: Database, settings: Settings, arq_pool: ArqRedis
) -> None:
    world = await make_world(db)
    await make_population(db, world)
    await make_campaign(db, world)
    assert await mark_populating(db, None, world.target_id, only_if_not_populated=True)
    assert await enqueue_population(db, arq_pool, world.target_id)
    [queued] = await arq_pool.queued_jobs(queue_name=names.QUEUE_NAME)
    await arq_pool.set(retry_key_prefix + str(queued.job_id), MAX_TRIES)  # its last try is spent
    with pytest.raises(FailedJobs):
        await run_jobs(settings)
    assert await _target_status(db, world.target_id) == PopulationStatus.POPULATING

    # Its result keeps the population's job id for an hour; a worker's start asks again.
    assert await jobs.recover_interrupted_populations({"db": db, "redis": arq_pool}) == [
        world.target_id
    ]
    await run_jobs(settings)
    assert await _target_status(db, world.target_id) == PopulationStatus.POPULATED


async def _audit_entries_aged(db: Database, ages_in_days: list[float]) -> None:
    world = await make_world(db)
    async with db.writer() as session:
        for _ in ages_in_days:
            await audit.record(
                session,
                marketer_id=world.marketer_id,
                actor=audit.command_line_actor(),
                action=AuditAction.DEPOSIT,
            )
        await session.flush()
        ids = (await session.scalars(select(AuditEntry.id).order_by(AuditEntry.id))).all()
        for entry_id, age in zip(ids, ages_in_days, strict=True):
            await session.execute(
                update(AuditEntry)
                .where(AuditEntry.id == entry_id)
                .values(at=utcnow() - timedelta(days=age))
            )
        await session.commit()


async def _audit_ages(db: Database) -> list[int]:
    async with db.reader() as session:
        ats = (await session.scalars(select(AuditEntry.at).order_by(AuditEntry.id))).all()
    return [(utcnow() - at).days for at in ats]


async def test_audit_entries_past_the_retention_are_pruned_and_unset_keeps_them_all(
    db: Database, settings: Settings, arq_pool: ArqRedis
) -> None:
    await _audit_entries_aged(db, [400, 31, 29, 0])

    kept = await arq_pool.enqueue_job(names.JOB_PRUNE_AUDIT)
    await run_jobs(settings)
    assert settings.audit_retention_days is None
    assert kept is not None and await kept.result(timeout=5) == {"pruned": 0}
    assert await _audit_ages(db) == [400, 31, 29, 0]

    pruned = await arq_pool.enqueue_job(names.JOB_PRUNE_AUDIT)
    await run_jobs(settings.model_copy(update={"audit_retention_days": 30}))
    assert pruned is not None and await pruned.result(timeout=5) == {"pruned": 2}
    assert await _audit_ages(db) == [29, 0]

"""A job's lease: short from the moment a worker takes the job, renewed while it runs, then
let go."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from arq import create_pool
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix

from pulse_core import names
from pulse_core.config import Settings
from workers import lease
from workers.settings import create_worker

LEASE_SECONDS = 1.0


async def test_a_job_holds_a_short_lease_for_as_long_as_it_runs(redis_url: str) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    key = in_progress_key_prefix + "job-1"
    ctx = {"job_id": "job-1", "redis": redis}
    try:
        await redis.psetex(key, 610_000, b"1")  # as arq marks a job with a 600 s timeout
        await lease.start(ctx, LEASE_SECONDS)
        # The mark becomes the lease: a dead worker's job waits one lease, not 610 s.
        deadline = time.monotonic() + 5
        while await redis.pttl(key) > LEASE_SECONDS * 1000:
            assert time.monotonic() < deadline, "the mark never became the lease"
            await asyncio.sleep(0.01)
        # Renewed while the job runs: the mark outlives three leases.
        held_until = time.monotonic() + 3 * LEASE_SECONDS
        while time.monotonic() < held_until:
            assert 0 < await redis.pttl(key) <= LEASE_SECONDS * 1000
            await asyncio.sleep(0.05)
        await lease.stop(ctx)
        # Not renewed once the job ended (arq then deletes the mark, or keeps it for a cron job).
        deadline = time.monotonic() + 3 * LEASE_SECONDS
        while await redis.exists(key):
            assert time.monotonic() < deadline, "the lease was still renewed after the job"
            await asyncio.sleep(0.05)
    finally:
        await lease.stop(ctx)
        await redis.aclose()


async def test_a_worker_dead_between_taking_a_job_and_starting_it_holds_it_one_lease(
    settings: Settings,
) -> None:
    """arq marks a job it takes before the job starts (and before its lease is renewed): a
    worker killed in between, as when Redis is slow to take its writes, holds the job for that
    mark, which is one lease and not the job timeout plus 10 s."""
    pool = await create_pool(
        RedisSettings.from_dsn(settings.require_redis_url()), default_queue_name=names.QUEUE_NAME
    )
    worker = create_worker(settings, redis_pool=pool, handle_signals=False)
    try:
        job = await pool.enqueue_job(names.JOB_POPULATE_TARGET, 1)
        assert job is not None
        await worker.start_jobs([job.job_id.encode()])
        worker.tasks[job.job_id].cancel()  # it dies before the job starts
        held_ms = await pool.pttl(in_progress_key_prefix + job.job_id)
        assert 0 < held_ms <= settings.job_lease_seconds * 1000
        assert settings.job_lease_seconds < settings.job_timeout_seconds
    finally:
        await pool.aclose()

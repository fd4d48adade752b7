"""A running job's lease: short while the job runs, renewed until it ends, then let go."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from arq.constants import in_progress_key_prefix

from workers import lease

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

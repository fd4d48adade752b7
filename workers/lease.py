"""A short, renewed claim on each running job, so that a dead worker's job is retried soon.

arq marks a job "in progress" for the job timeout plus 10 s, and no other worker takes the job
until that mark expires: with a 10-minute timeout, a worker killed mid-job would hold its job
back for 10 minutes. Here the mark is cut to a short lease as the job starts and renewed while
it runs, so a job outlives its worker by one lease at most. A job that is stalled or
partitioned from Redis for longer than a lease may run twice; every job is safe to run twice
(no offer is created, no target announced populated twice: docs/reliability.md, "Running a
job twice").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq.constants import in_progress_key_prefix
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LEASE_TASK = "pulse_lease"


async def _renew(redis: Any, key: str, lease_ms: int) -> None:
    while True:
        try:
            await redis.pexpire(key, lease_ms)
        except (RedisError, OSError) as exc:
            log.warning("could not renew %s (the job may run again elsewhere): %s", key, exc)
        await asyncio.sleep(lease_ms / 3000)


async def start(ctx: dict[str, Any], lease_seconds: float) -> None:
    """arq `on_job_start`: hold the job by a lease renewed every third of it."""
    key = in_progress_key_prefix + str(ctx["job_id"])
    ctx[LEASE_TASK] = asyncio.create_task(
        _renew(ctx["redis"], key, int(lease_seconds * 1000)), name=f"lease {key}"
    )


async def stop(ctx: dict[str, Any]) -> None:
    """arq `on_job_end`: stop renewing; arq then clears (or keeps, for cron jobs) the mark."""
    task = ctx.pop(LEASE_TASK, None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

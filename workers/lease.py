"""A short, renewed claim on each job a worker takes, so that a dead worker's job is retried soon.

arq marks a job "in progress" for the job timeout plus 10 s, and no other worker takes the job
until that mark expires: with a 10-minute timeout, a worker killed mid-job would hold its job
back for 10 minutes. Here the mark lasts one lease from the moment a worker takes the job
(`LeasedWorker`), and is renewed while the job runs, so a job outlives its worker by one lease
at most, including a worker that dies between taking a job and starting it. A job that is
stalled or partitioned from Redis for longer than a lease may run twice; every job is safe to
run twice (no offer is created, no target announced populated twice: docs/reliability.md,
"Running a job twice").

Depends on arq 0.28's `Worker.in_progress_timeout_s`, the mark's length when it takes a job
(`tests/test_jobs.py` checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arq.constants import in_progress_key_prefix
from arq.worker import Worker
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

LEASE_TASK = "pulse_lease"


class LeasedWorker(Worker):
    """An arq worker whose mark on a job it takes lasts `lease_seconds`, not the job timeout
    plus 10 s: the mark is set before the job starts (and its lease is renewed), so a worker
    killed in between must not hold the job for the whole timeout."""

    def __init__(self, *args: Any, lease_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_progress_timeout_s = lease_seconds


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

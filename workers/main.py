"""Running one arq worker process until SIGTERM or SIGINT, through Redis outages."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import threading
import time
from typing import Any

from arq.worker import Worker
from redis.exceptions import RedisError

from pulse_core.config import Settings
from pulse_core.logs import setup_logging
from pulse_data.database import Database
from pulse_data.migrate import require_latest_schema
from workers.metrics import WorkerMetrics
from workers.settings import create_worker

log = logging.getLogger(__name__)

RESTART_BACKOFF_START_SECONDS = 0.5
RESTART_BACKOFF_MAX_SECONDS = 5.0
# A worker that ran this long before losing Redis starts again without waiting long.
STABLE_RUN_SECONDS = 30.0


def run_worker(settings: Settings) -> None:
    """Run a worker until it is told to stop; SIGTERM and SIGINT finish it cleanly.

    arq's worker ends when it loses Redis; this one starts a new arq worker after a jittered
    backoff, so a Redis restart delays jobs but stops nothing.
    """
    setup_logging(settings.log_level or "info", settings.log_format)
    require_latest_schema(settings.effective_database_url)
    metrics = WorkerMetrics(token=settings.metrics_token)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = threading.Event()
    current: list[Worker] = []

    def on_signal(signum: int) -> None:
        stop.set()
        if current:
            current[-1].handle_sig(signal.Signals(signum))

    try:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, on_signal, signum)
        backoff = RESTART_BACKOFF_START_SECONDS
        while not stop.is_set():
            worker = create_worker(settings, metrics, handle_signals=False)
            current[:] = [worker]
            started = time.monotonic()
            try:
                worker.run()
                break
            except (RedisError, OSError) as exc:
                if stop.is_set():
                    break
                if time.monotonic() - started > STABLE_RUN_SECONDS:
                    backoff = RESTART_BACKOFF_START_SECONDS
                # Jittered, so that the workers of a deployment do not all come back at once.
                delay = backoff * random.uniform(0.5, 1.0)
                log.warning("worker lost Redis (%s); starting again in %.1f s", exc, delay)
                loop.run_until_complete(_dispose(worker.ctx))
                loop.run_until_complete(asyncio.sleep(delay))
                backoff = min(backoff * 2, RESTART_BACKOFF_MAX_SECONDS)
        log.info("worker stopped")
    finally:
        loop.run_until_complete(metrics.close())
        asyncio.set_event_loop(None)
        loop.close()


async def _dispose(ctx: dict[str, Any]) -> None:
    """Close what the lost worker's start-up opened (its shutdown could not run)."""
    db = ctx.pop("db", None)
    if isinstance(db, Database):
        await db.dispose()

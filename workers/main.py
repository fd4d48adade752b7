"""Running one arq worker process until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import threading

from arq.worker import create_worker

from pulse_core.config import Settings
from workers.settings import worker_settings

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    """Run a worker until it is told to stop; SIGTERM and SIGINT finish it cleanly."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        in_main_thread = threading.current_thread() is threading.main_thread()
        worker = create_worker(worker_settings(settings), handle_signals=in_main_thread)
        worker.run()
        log.info("worker stopped: %r", worker)
    finally:
        asyncio.set_event_loop(None)
        loop.close()

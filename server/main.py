"""Run one API/WebSocket server process with uvicorn."""

from __future__ import annotations

import gc

import uvicorn

from pulse_core.config import Settings
from pulse_data.migrate import require_latest_schema
from server.app import create_app

WS_MAX_FRAME_BYTES = 64 * 1024

# Python's default (700, 10, 10) runs the young-generation collector every 700 allocations;
# with thousands of connections each collection walks their objects again, and at 10,000
# subscribers that took 46 % of the server's CPU (bench/fanout.py). Collecting every 50,000
# allocations costs a few MB at most and almost no CPU.
GC_THRESHOLDS = (50_000, 20, 100)


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_max_size=WS_MAX_FRAME_BYTES,
        ws_per_message_deflate=False,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        log_level="info",
        access_log=False,
        lifespan="on",
    )


def run_server(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM; a schema that is not the latest is refused first."""
    require_latest_schema(settings.effective_database_url)
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn.Server(uvicorn_config(settings)).run()

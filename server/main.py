"""Run one API/WebSocket server process with uvicorn."""

from __future__ import annotations

import asyncio
import gc
import logging

import uvicorn

from pulse_core.config import Settings
from pulse_core.logs import RedactTokens, setup_logging
from pulse_data.migrate import require_latest_schema
from server.app import create_app
from server.ws_native import native_protocol

WS_MAX_FRAME_BYTES = 64 * 1024

# Python's default (700, 10, 10) runs the young-generation collector every 700 allocations;
# with thousands of connections each collection walks their objects again, and at 10,000
# subscribers that took 46 % of the server's CPU (bench/fanout.py). Collecting every 50,000
# allocations costs a few MB at most and almost no CPU.
GC_THRESHOLDS = (50_000, 20, 100)

# uvicorn logs each WebSocket's path with its query, where a client may send its login token.
LOGGERS_WITH_PATHS = ("uvicorn.error", "uvicorn.access")


def _redact_uvicorn_logs() -> None:
    for name in LOGGERS_WITH_PATHS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    """uvicorn's settings; forwarded headers are believed only from `PULSE_TRUSTED_PROXIES`.
    `/api/ws` is served by `server.ws_native` (uvicorn's own WebSocket protocol, frames written
    straight to each connection), or by the ASGI endpoint if this uvicorn cannot."""
    app = create_app(settings)
    forwarded = settings.trusted_proxies
    ws: type[asyncio.Protocol] | str = (
        native_protocol(app, forwarded_allow_ips=forwarded) or "websockets-sansio"
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws=ws,
        ws_max_size=WS_MAX_FRAME_BYTES,
        ws_per_message_deflate=False,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # Logging is set up by `setup_logging` (one format for every process); the access log
        # is server.access's, with the request id.
        log_config=None,
        log_level=None,
        access_log=False,
        lifespan="on",
        proxy_headers=settings.trusted_proxies is not None,
        forwarded_allow_ips=settings.trusted_proxies,
    )
    _redact_uvicorn_logs()  # after Config, which sets up uvicorn's loggers
    return config


def run_server(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM; a schema that is not the latest is refused first."""
    setup_logging(settings.log_level or "info", settings.log_format)
    require_latest_schema(settings.effective_database_url)
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn.Server(uvicorn_config(settings)).run()

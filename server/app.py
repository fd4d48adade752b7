"""The app factory: `create_app(settings)` with a lifespan that opens and closes every client."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from arq.connections import RedisSettings, create_pool
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from sqlalchemy.exc import DBAPIError, OperationalError

from pulse_core import version
from pulse_core.config import Settings
from pulse_core.names import QUEUE_NAME
from pulse_data.database import Database
from pulse_data.pubsub import EventPublisher
from server import ws
from server.access import AccessLog
from server.api import about, audit, auth, campaigns, events, health, ingest, me, targets, users
from server.bodylimit import BodyLimit
from server.errors import install_error_handlers
from server.fanout import Hub
from server.listener import RedisListener
from server.metrics import ServerMetrics
from server.ratelimit import LoginLimiter
from server.session_watch import SessionWatcher
from server.state import ServerState
from server.topic_access import TopicAccess

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    secret_key = settings.require_secret_key()
    redis_url = settings.require_redis_url()
    metrics = (
        ServerMetrics(
            lambda: getattr(app.state, "pulse", None),
            slow_broadcast_seconds=settings.slow_broadcast_ms / 1000,
            token=settings.metrics_token,
        )
        if settings.metrics_enabled
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.effective_database_url)
        redis = Redis.from_url(redis_url, socket_connect_timeout=5)
        jobs = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=QUEUE_NAME)
        hub = Hub(db, metrics.observe_broadcast if metrics else None)
        login_limiter = LoginLimiter(redis_url, settings.login_attempts_per_minute)
        listener = RedisListener(redis_url, hub)
        listener_task = asyncio.create_task(listener.run(), name="event-listener")
        session_watch = SessionWatcher(db)
        session_watch_task = asyncio.create_task(session_watch.run(), name="session-watch")
        app.state.pulse = ServerState(
            settings=settings,
            secret_key=secret_key,
            db=db,
            redis=redis,
            jobs=jobs,
            publisher=EventPublisher(db, redis),
            hub=hub,
            listener=listener,
            listener_task=listener_task,
            login_limiter=login_limiter,
            topic_access=TopicAccess(db),
            session_watch=session_watch,
            session_watch_task=session_watch_task,
        )
        # Long-lived objects made at start-up need no collection: fewer, shorter GC pauses.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in (listener_task, session_watch_task):
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await login_limiter.aclose()
            await jobs.aclose()
            await redis.aclose()
            await db.dispose()

    app = FastAPI(
        title="Campaign Pulse",
        version=version(),
        lifespan=lifespan,
        description="Live campaign stats: REST API and a WebSocket of events per topic.",
    )
    app.state.metrics = metrics
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.add_middleware(AccessLog, metrics=metrics)  # the outermost: it times everything

    # A connection the driver could not open or lost (asyncpg raises plain OSErrors, such as
    # ConnectionRefusedError, while connecting) is the database not answering too.
    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    @app.exception_handler(OSError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.error("database error on %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(
            {"detail": "the database is not answering; nothing was changed, try again shortly"},
            status_code=503,
            headers={"Retry-After": "2"},
        )

    for router in (
        about.router,
        auth.router,
        me.router,
        users.router,
        targets.router,
        campaigns.router,
        audit.router,
        events.router,
        ingest.router,
        health.router,
    ):
        app.include_router(router)
    app.include_router(ws.router)
    return app

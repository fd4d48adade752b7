"""Liveness, readiness (database, its schema, Redis and the event listener) and Prometheus metrics.

A failed check shows a short generic reason; its detail (which may name hosts, socket paths or
driver errors) goes to the log only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pulse_data.migrate import schema_state_of
from server.deps import StateDep
from server.metrics import CONTENT_TYPE, ServerMetrics
from server.state import ServerState

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 2.0


class NotReady(Exception):
    """A check's own reason to show as it is: it names nothing internal."""


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(name: str, probe: Awaitable[Any]) -> tuple[str, str | None]:
    """(name, None) when the probe succeeds, else (name, a short reason that is safe to show)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await probe
        return name, None
    except NotReady as exc:
        return name, str(exc)
    except TimeoutError:
        log.warning("readiness: %s gave no answer within %.0f s", name, CHECK_TIMEOUT_SECONDS)
        return name, f"no answer within {CHECK_TIMEOUT_SECONDS:.0f} s"
    except Exception as exc:
        log.warning("readiness: %s is not answering: %s: %s", name, type(exc).__name__, exc)
        return name, "not answering"


async def _schema_is_latest(state: ServerState) -> None:
    problem = (await schema_state_of(state.db.engine)).problem()
    if problem is not None:
        raise NotReady(problem)


@router.get("/readyz", responses={503: {"description": "a dependency is down"}})
async def readyz(state: StateDep) -> JSONResponse:
    checks = dict(
        await asyncio.gather(
            _check("database", state.db.ping()),
            _check("schema", _schema_is_latest(state)),
            _check("redis", state.redis.ping()),
        )
    )
    checks["event_listener"] = None if state.listener.health.connected else "not connected"
    checks["session_watch"] = state.session_watch.problem()
    ready = all(error is None for error in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: error or "ok" for name, error in checks.items()},
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        401: {"description": "PULSE_METRICS_TOKEN is set and this is not its bearer token"},
        404: {"description": "metrics are turned off (PULSE_METRICS_ENABLED=false)"},
    },
)
async def metrics(request: Request) -> Response:
    """This server's metrics (docs/metrics.md), for Prometheus to scrape."""
    server_metrics: ServerMetrics | None = request.app.state.metrics
    if server_metrics is None:
        return JSONResponse({"detail": "metrics are turned off on this server"}, status_code=404)
    if not server_metrics.authorized(request.headers.get("authorization")):
        return JSONResponse(
            {"detail": "send the metrics token as Authorization: Bearer <PULSE_METRICS_TOKEN>"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(server_metrics.render(), media_type=CONTENT_TYPE)

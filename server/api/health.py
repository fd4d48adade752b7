"""Liveness, readiness (database, Redis and the event listener) and fan-out metrics."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from server.deps import StateDep

router = APIRouter(tags=["health"])
CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check(name: str, probe: Any) -> tuple[str, str | None]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await probe
        return name, None
    except Exception as exc:
        return name, f"{type(exc).__name__}: {exc}"


@router.get("/readyz", responses={503: {"description": "a dependency is down"}})
async def readyz(state: StateDep) -> JSONResponse:
    checks = dict(
        await asyncio.gather(
            _check("database", state.db.ping()), _check("redis", state.redis.ping())
        )
    )
    listener = state.listener.health
    checks["event_listener"] = None if listener.connected else (listener.last_error or "connecting")
    checks["session_watch"] = state.session_watch.problem()
    ready = all(error is None for error in checks.values())
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {name: error or "ok" for name, error in checks.items()},
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(state: StateDep) -> dict[str, Any]:
    hub = state.hub
    return {
        "connections": len(hub.connections),
        "topics": len(hub.topics),
        "subscriptions": hub.subscription_count,
        **asdict(hub.stats),
        "listener": asdict(state.listener.health),
        "session_watch": asdict(state.session_watch.health),
    }

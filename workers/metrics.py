"""A worker's Prometheus metrics and the small HTTP server that serves them.

Every job function is wrapped (`instrument`) to count its runs by outcome and time them:
`complete`, `retried` (it asked to run again, or was cancelled and will be), `failed` (it
raised, timed out, or used its last try). The queue depth is read from Redis at each scrape.
`PULSE_WORKER_METRICS_PORT` serves `GET /metrics` (with `PULSE_METRICS_TOKEN`: bearer only).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from arq import Retry
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis

from pulse_core import names
from pulse_core.bearer import bearer_matches

log = logging.getLogger(__name__)

JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600)
OUTCOMES = ("complete", "retried", "failed")
# What a job's result says it did, counted as its own metric.
COUNTED_RESULTS = {
    names.JOB_CREATE_OFFERS: ("created", "offers"),
    names.JOB_RELAY_EVENTS: ("relayed", "relayed"),
}
MAX_REQUEST_BYTES = 8192
REQUEST_TIMEOUT_SECONDS = 5.0

Job = TypeVar("Job")  # arq's Function or CronJob


class WorkerMetrics:
    """The registry of one worker process; it outlives the arq workers restarted inside it."""

    def __init__(self, *, token: str | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series
        self.registry = CollectorRegistry()
        self.token = token
        self.redis: Redis | None = None
        self._server: asyncio.Server | None = None
        self.jobs = Counter(
            "pulse_worker_jobs",
            "Job runs by function and outcome (complete, retried, failed)",
            ["function", "outcome"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "pulse_worker_job_duration_seconds",
            "How long job runs took, by function (every outcome)",
            ["function"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "pulse_worker_queue_jobs",
            "Jobs in the queue (waiting, deferred for a retry, or running), read at scrape time",
            registry=self.registry,
        )
        self.counted = {
            "offers": Counter(
                "pulse_worker_offers_created",
                "Pending offers created by launches and offer refreshes",
                registry=self.registry,
            ),
            "relayed": Counter(
                "pulse_worker_events_relayed",
                "Committed events published by the relay (their first publish had failed)",
                registry=self.registry,
            ),
        }
        ProcessCollector(registry=self.registry)

    def instrument(self, jobs: Iterable[Job], *, max_tries: int, timeout: float) -> tuple[Job, ...]:
        """The same arq functions or cron jobs, each counted and timed."""
        counted = []
        for job in jobs:
            name: str = job.name  # type: ignore[attr-defined]
            tries = getattr(job, "max_tries", None) or max_tries
            job_timeout = getattr(job, "timeout_s", None) or timeout
            for outcome in OUTCOMES:
                self.jobs.labels(name, outcome)
            wrapped = self._wrap(name, job.coroutine, tries, job_timeout)  # type: ignore[attr-defined]
            counted.append(dataclasses.replace(job, coroutine=wrapped))  # type: ignore[type-var]
        return tuple(counted)

    def _wrap(
        self, name: str, coroutine: Callable[..., Awaitable[Any]], max_tries: int, timeout: float
    ) -> Callable[..., Awaitable[Any]]:
        runs, duration = self.jobs, self.job_duration.labels(name)
        counted = COUNTED_RESULTS.get(name)

        @functools.wraps(coroutine)
        async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            last_try = int(ctx.get("job_try") or 1) >= max_tries
            outcome = "failed"
            try:
                result = await coroutine(ctx, *args, **kwargs)
                outcome = "complete"
                if counted is not None and isinstance(result, dict):
                    key, metric = counted
                    self.counted[metric].inc(int(result.get(key) or 0))
                return result
            except Retry:
                outcome = "failed" if last_try else "retried"
                raise
            except asyncio.CancelledError:
                # Cancelled at its timeout: failed; by a shutdown: it runs again.
                timed_out = time.perf_counter() - started >= timeout - 0.5
                outcome = "failed" if timed_out or last_try else "retried"
                raise
            finally:
                duration.observe(time.perf_counter() - started)
                runs.labels(name, outcome).inc()

        return run

    async def render(self) -> bytes:
        if self.redis is not None:
            try:
                self.queue_depth.set(await self.redis.zcard(names.QUEUE_NAME))
            except Exception as exc:
                log.warning("metrics: cannot read the queue depth: %s", exc)
        return generate_latest(self.registry)

    async def serve(self, host: str, port: int) -> None:
        """Serve `GET /metrics` on host:port until `close`; a port in use is logged, not fatal."""
        if self._server is not None:
            return
        try:
            self._server = await asyncio.start_server(self._handle, host, port)
        except OSError as exc:
            log.error("cannot serve worker metrics on %s:%d: %s", host, port, exc)
            return
        log.info("worker metrics at http://%s:%d/metrics", host, port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
                status, content_type, body = await self._answer(head)
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n".encode()
                    + (b"WWW-Authenticate: Bearer\r\n" if status.startswith("401") else b"")
                    + b"\r\n"
                    + body
                )
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()

    async def _answer(self, head: bytes) -> tuple[str, str, bytes]:
        if len(head) > MAX_REQUEST_BYTES:
            return "431 Request Header Fields Too Large", "text/plain", b"headers too large\n"
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        if path != "/metrics":
            return "404 Not Found", "text/plain", b"only /metrics is served here\n"
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"use GET\n"
        if self.token is not None:
            authorization = next(
                (
                    value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:])
                    if name.strip().lower() == "authorization"
                ),
                None,
            )
            if not bearer_matches(authorization, self.token):
                return "401 Unauthorized", "text/plain", b"send Authorization: Bearer <token>\n"
        return "200 OK", CONTENT_TYPE_LATEST, await self.render()

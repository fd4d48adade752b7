"""The arq worker settings of one deployment, built from its `Settings`."""

from __future__ import annotations

import random
from typing import Any

from arq import cron, func
from arq.connections import RedisSettings
from arq.worker import get_kwargs

from pulse_core import names
from pulse_core.config import Settings
from pulse_data.database import Database
from pulse_data.pubsub import EventPublisher
from workers import jobs, lease, mail
from workers.metrics import WorkerMetrics

MAX_TRIES = 5
# A campaign's offers may wait for a large target to populate: retried with growing delays.
CREATE_OFFERS_MAX_TRIES = 120
KEEP_RESULT_SECONDS = 3600
CRON_KEEP_RESULT_SECONDS = 60
HEALTH_CHECK_SECONDS = 30
EVERY_2_SECONDS = set(range(0, 60, 2))


def _every(seconds: int) -> set[int]:
    return set(range(0, 60, max(1, min(seconds, 60))))


def worker_settings(settings: Settings, metrics: WorkerMetrics | None = None) -> type:
    """A class of arq `Worker` keyword arguments, as `arq.run_worker` takes it; `metrics` may
    outlive it (a worker process restarts its arq worker when Redis comes back)."""
    counted = metrics or WorkerMetrics(token=settings.metrics_token)

    async def on_startup(ctx: dict[str, Any]) -> None:
        counted.redis = ctx["redis"]
        if settings.worker_metrics_port is not None:
            await counted.serve(settings.host, settings.worker_metrics_port)
        db = Database(settings.effective_database_url)
        ctx["settings"] = settings
        ctx["db"] = db
        ctx["publisher"] = EventPublisher(db, ctx["redis"])
        ctx["rng"] = random.Random()
        ctx["mail"] = mail.MailService(settings)
        jobs.prepare(ctx)
        await jobs.recover_interrupted_populations(ctx)

    async def on_job_start(ctx: dict[str, Any]) -> None:
        await lease.start(ctx, settings.job_lease_seconds)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await counted.close()
        db = ctx.get("db")
        if isinstance(db, Database):
            await db.dispose()

    periodic = [
        cron(
            jobs.activate_pending_offers,
            name=names.JOB_ACTIVATE_OFFERS,
            second=EVERY_2_SECONDS,
            keep_result=CRON_KEEP_RESULT_SECONDS,
        ),
        cron(
            jobs.relay_unpublished_events,
            name=names.JOB_RELAY_EVENTS,
            second=EVERY_2_SECONDS,
            run_at_startup=True,
            keep_result=CRON_KEEP_RESULT_SECONDS,
        ),
        cron(
            jobs.prune_event_log,
            name=names.JOB_PRUNE_EVENTS,
            minute=17,
            second=0,
            run_at_startup=True,
            keep_result=KEEP_RESULT_SECONDS,
        ),
        cron(
            jobs.prune_audit_trail,
            name=names.JOB_PRUNE_AUDIT,
            minute=47,
            second=0,
            run_at_startup=True,
            keep_result=KEEP_RESULT_SECONDS,
        ),
        cron(
            mail.send_notifications,
            name=names.JOB_SEND_MAIL,
            second=_every(settings.mail_poll_seconds),
            keep_result=CRON_KEEP_RESULT_SECONDS,
        ),
    ]
    if settings.demo:
        periodic.append(
            cron(
                jobs.demo_traffic,
                name=names.JOB_DEMO_TRAFFIC,
                second=_every(settings.demo_traffic_interval_seconds),
                keep_result=CRON_KEEP_RESULT_SECONDS,
            )
        )

    functions = (
        func(jobs.populate_target, name=names.JOB_POPULATE_TARGET),
        func(
            jobs.create_initial_pending_offers,
            name=names.JOB_CREATE_OFFERS,
            max_tries=CREATE_OFFERS_MAX_TRIES,
        ),
    )
    return type(
        "WorkerSettings",
        (),
        {
            "functions": counted.instrument(
                functions, max_tries=MAX_TRIES, timeout=settings.job_timeout_seconds
            ),
            "cron_jobs": counted.instrument(
                periodic, max_tries=MAX_TRIES, timeout=settings.job_timeout_seconds
            ),
            "on_startup": on_startup,
            "on_shutdown": on_shutdown,
            "on_job_start": on_job_start,
            "on_job_end": lease.stop,
            "redis_settings": RedisSettings.from_dsn(settings.require_redis_url()),
            "queue_name": names.QUEUE_NAME,
            "job_timeout": settings.job_timeout_seconds,
            "max_tries": MAX_TRIES,
            "keep_result": KEEP_RESULT_SECONDS,
            "health_check_interval": HEALTH_CHECK_SECONDS,
        },
    )


def create_worker(
    settings: Settings, metrics: WorkerMetrics | None = None, **overrides: Any
) -> lease.LeasedWorker:
    """The arq worker `worker_settings` describes (`overrides` replace its arguments), holding
    each job it takes by a lease of `PULSE_JOB_LEASE_SECONDS`."""
    arguments = {**get_kwargs(worker_settings(settings, metrics)), **overrides}
    return lease.LeasedWorker(**arguments, lease_seconds=settings.job_lease_seconds)

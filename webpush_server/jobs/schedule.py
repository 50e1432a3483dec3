"""The cron table: scheduled jobs with fixed ids, registered idempotently."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq_scheduler import Scheduler

from .queues import DEFAULT_QUEUE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledJob:
    """One cron entry: its fixed id is also its `jobs run` name."""

    id: str
    cron: str  # UTC, minute hour day month weekday
    func: str
    description: str


_TABLE = "webpush_server.schedule"


def table(app: Flask | None = None) -> dict[str, ScheduledJob]:
    """Return the app's cron table, filled by each package's init_app."""
    app = app or current_app
    return app.extensions.setdefault(_TABLE, {})


def register(app: Flask, *jobs: ScheduledJob) -> None:
    """Add jobs to the app's cron table; an id names one job."""
    entries = table(app)
    for job in jobs:
        if entries.get(job.id, job) != job:
            raise ValueError(f"scheduled job {job.id} is registered twice")
        entries[job.id] = job


def install(connection: Redis, entries: Iterable[ScheduledJob]) -> Scheduler:
    """Replace every cron entry with entries: cancel by fixed id, then add."""
    entries = list(entries)
    scheduler = Scheduler(queue_name=DEFAULT_QUEUE, connection=connection, interval=5)
    wanted = {entry.id for entry in entries}
    for job in scheduler.get_jobs():
        if job.id in wanted or job.meta.get("webpush_cron"):
            scheduler.cancel(job)
    for entry in entries:
        scheduler.cron(
            entry.cron,
            func=entry.func,
            id=entry.id,
            queue_name=DEFAULT_QUEUE,
            description=entry.description,
            meta={"webpush_cron": True},
            result_ttl=3600,
            timeout=1800,
            use_local_timezone=False,
        )
        log.info("scheduled %s (%s UTC)", entry.id, entry.cron)
    return scheduler


def job_name(func: str) -> str:
    """Return the name a job is counted under: its cron id, else its function's, dashed."""
    for entry in table().values() if has_app_context() else ():
        if entry.func == func:
            return entry.id
    return func.rpartition(".")[2].replace("_", "-")

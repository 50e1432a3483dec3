"""The cron table: scheduled jobs with fixed ids, registered idempotently."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import time

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq_scheduler import Scheduler

from .queues import DEFAULT_QUEUE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduledJob:
    """One scheduled job: its fixed id is also its `jobs run` name.

    A cron job has a UTC cron line that rq-scheduler fires. A daily job has no cron line but
    a local wall-clock time (daily_at, in APP_TIMEZONE): the every-minute start-daily-jobs
    tick starts its occurrence for today once that is due (jobs.batch.start_daily_jobs).
    """

    id: str
    cron: str | None  # UTC, minute hour day month weekday; None for a daily job
    func: str
    description: str
    daily_at: time | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.daily_at is None):
            raise ValueError(f"scheduled job {self.id} needs a cron line or a daily time")

    def when(self, zone: str) -> str:
        """Describe when it runs: `* * * * * UTC` or `daily 09:00 America/New_York`."""
        if self.daily_at is not None:
            return f"daily {self.daily_at:%H:%M} {zone}"
        return f"{self.cron} UTC"


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


def install(
    connection: Redis, entries: Iterable[ScheduledJob], *, interval: float = 5
) -> Scheduler:
    """Replace every cron entry with entries: cancel by fixed id, then add.

    Daily jobs have no cron entry: the start-daily-jobs tick starts them.
    """
    entries = cron_entries(entries)
    scheduler = Scheduler(queue_name=DEFAULT_QUEUE, connection=connection, interval=interval)
    wanted = {entry.id for entry in entries}
    for job in scheduler.get_jobs():
        if job.id in wanted or job.meta.get("webpush_cron"):
            scheduler.cancel(job)
    for entry in entries:
        _add(scheduler, entry)
        log.info("scheduled %s (%s UTC)", entry.id, entry.cron)
    return scheduler


def reinstall_missing(scheduler: Scheduler, entries: Iterable[ScheduledJob]) -> list[str]:
    """Add back every cron entry Redis lost (it restarted empty); return their ids.

    Adding an entry another scheduler just added again is harmless: the fixed id is the key.
    """
    missing = [entry for entry in cron_entries(entries) if entry.id not in scheduler]
    for entry in missing:
        _add(scheduler, entry)
    if missing:
        log.warning(
            "cron entries missing from Redis, reinstalled: %s",
            ", ".join(entry.id for entry in missing),
        )
    return [entry.id for entry in missing]


def cron_entries(entries: Iterable[ScheduledJob]) -> list[ScheduledJob]:
    """Return the entries rq-scheduler fires (those with a cron line)."""
    return [entry for entry in entries if entry.cron is not None]


def _add(scheduler: Scheduler, entry: ScheduledJob) -> None:
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


def job_name(func: str) -> str:
    """Return the name a job is counted under: its cron id, else its function's, dashed."""
    for entry in table().values() if has_app_context() else ():
        if entry.func == func:
            return entry.id
    return func.rpartition(".")[2].replace("_", "-")

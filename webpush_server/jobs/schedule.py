"""The cron table: scheduled jobs with fixed ids, registered idempotently."""

from __future__ import annotations

import logging
from dataclasses import dataclass

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


# Domain packages append their entries through register(); this package never imports them.
SCHEDULE: dict[str, ScheduledJob] = {}


def register(job: ScheduledJob) -> None:
    """Add a job to the cron table."""
    SCHEDULE[job.id] = job


register(
    ScheduledJob(
        "sweep-outbox",
        "* * * * *",
        "webpush_server.jobs.delivery.sweep_outbox",
        "re-enqueue deliveries left pending or claimed by a dead worker",
    )
)


def install(connection: Redis) -> Scheduler:
    """Replace every cron entry with the current table: cancel by fixed id, then add."""
    scheduler = Scheduler(queue_name=DEFAULT_QUEUE, connection=connection, interval=5)
    wanted = set(SCHEDULE)
    for job in scheduler.get_jobs():
        if job.id in wanted or job.meta.get("webpush_cron"):
            scheduler.cancel(job)
    for entry in SCHEDULE.values():
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

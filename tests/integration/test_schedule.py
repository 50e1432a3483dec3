"""The cron table in rq-scheduler, against the real Redis."""

from __future__ import annotations

from collections import Counter

import pytest
from redis import Redis
from rq_scheduler import Scheduler

from webpush_server.jobs import schedule


def install_cron_table(app, connection: Redis) -> dict[str, schedule.ScheduledJob]:
    """Install app's cron table in rq-scheduler; return the table, by id."""
    table = schedule.table(app)
    schedule.install(connection, table.values())
    return table


# rq-scheduler calls crontab's next() in the form that warns about a future default; our cron
# lines are UTC either way (use_local_timezone=False), as `flask jobs scheduler` notes too.
@pytest.mark.filterwarnings("ignore::FutureWarning:rq_scheduler")
def test_installing_the_schedule_twice_leaves_one_entry_per_id(app, redis_url):
    connection = Redis.from_url(redis_url)
    try:
        install_cron_table(app, connection)
        table = install_cron_table(app, connection)
        jobs = list(Scheduler(connection=connection).get_jobs())
    finally:
        connection.close()
    # Daily jobs have no cron entry: the start-daily-jobs tick starts them.
    cron = {entry.id: entry.cron for entry in table.values() if entry.cron is not None}
    assert Counter(job.id for job in jobs) == dict.fromkeys(cron, 1)  # each id once
    # Three daily jobs: notify-expiring-coupons, remind-loans, resume-holds.
    assert len(jobs) == len(cron) == len(table) - 3 == 11
    assert {job.id: job.meta["cron_string"] for job in jobs} == cron
    assert "start-daily-jobs" in cron and "notify-expiring-coupons" not in cron

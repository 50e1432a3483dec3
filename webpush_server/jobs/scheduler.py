"""The `flask jobs scheduler` process: rq-scheduler's loop, made to outlive Redis.

rq-scheduler's own `run()` exits on the first ConnectionError, and a Redis that restarts
empty has lost every cron entry (sweep-outbox too) until someone restarts the scheduler.
This loop waits for Redis with a capped backoff, and checks the cron table every
SCHEDULER_CHECK_SECONDS (and right after an outage), adding back whatever is missing.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterable
from types import FrameType

from redis import Redis
from rq_scheduler import Scheduler

from .reconnect import REDIS_DOWN, Backoff
from .schedule import ScheduledJob, install, reinstall_missing

log = logging.getLogger(__name__)


def run_scheduler(
    connection: Redis,
    entries: Iterable[ScheduledJob],
    *,
    interval: float = 5,
    check_seconds: float = 60,
    reconnect_max_seconds: float = 30,
    burst: bool = False,
) -> None:
    """Install the cron table, then enqueue what is due every interval until stopped.

    Args:
        interval: seconds between two looks at what is due.
        check_seconds: seconds between two checks that every cron entry is still in Redis.
        reconnect_max_seconds: the longest wait between two attempts to reach Redis.
        burst: enqueue what is due once and return.
    """
    entries = list(entries)
    stop = _Stop()
    backoff = Backoff("scheduler", cap=reconnect_max_seconds, stopping=stop)
    scheduler: Scheduler | None = None
    while scheduler is None and not stop():
        try:
            scheduler = install(connection, entries, interval=interval)
            scheduler.register_birth()
        except REDIS_DOWN as error:
            scheduler = None
            backoff.wait(error)
    if scheduler is None:
        return
    backoff.reset()
    checked = time.monotonic()
    try:
        while not stop():
            started = time.monotonic()
            try:
                if started - checked >= check_seconds:
                    reinstall_missing(scheduler, entries)
                    checked = started
                scheduler.heartbeat()
                if scheduler.acquire_lock():
                    try:
                        scheduler.enqueue_jobs()
                    finally:
                        scheduler.remove_lock()
                backoff.reset()
            except REDIS_DOWN as error:
                # Whatever Redis comes back may be an empty one: check at once, not in a minute.
                checked = float("-inf")
                scheduler._lock_acquired = False  # it went with the old Redis
                backoff.wait(error)
                continue
            if burst:
                return
            stop.sleep(interval - (time.monotonic() - started))
    finally:
        try:
            scheduler.remove_lock()
            scheduler.register_death()
        except REDIS_DOWN:
            pass  # the lock expires on its own
        log.info("scheduler stopped")


class _Stop:
    """SIGTERM/SIGINT asks the loop to stop after its current step (and cuts its sleeps short)."""

    def __init__(self) -> None:
        self.asked = False
        signal.signal(signal.SIGTERM, self._ask)
        signal.signal(signal.SIGINT, self._ask)

    def _ask(self, signum: int, frame: FrameType | None) -> None:
        log.info("scheduler: stopping (%s)", signal.Signals(signum).name)
        self.asked = True

    def __call__(self) -> bool:
        return self.asked

    def sleep(self, seconds: float) -> None:
        """Sleep up to seconds, in short steps so a stop is not kept waiting."""
        until = time.monotonic() + seconds
        while not self.asked and (left := until - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))

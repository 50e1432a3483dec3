"""The RQ worker of `flask jobs worker`: jobs run in this process, under their request id.

The worker and the RQ scheduler it forks outlive Redis: when it goes away they wait for it
with a capped backoff (jobs/reconnect.py) and carry on, instead of exiting.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.client import Pipeline
from rq import SimpleWorker, worker_registration
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.scheduler import RQScheduler

from .. import logs
from ..metrics import JOB_RUNS
from .reconnect import REDIS_DOWN, Backoff
from .schedule import job_name

log = logging.getLogger(__name__)


class ResilientScheduler(RQScheduler):
    """RQ's scheduler (enqueue_at jobs: retries, releases), surviving a Redis restart.

    RQ's own loop dies on the first ConnectionError, and its worker starts a new one only at
    the next maintenance run (10 minutes): retries would wait that long.
    """

    reconnect_max_seconds = 30.0

    def work(self) -> None:
        """Enqueue due jobs every interval; wait out Redis outages instead of exiting."""
        self._install_signal_handlers()
        backoff = Backoff(
            "rq scheduler",
            cap=self.reconnect_max_seconds,
            stopping=lambda: self._stop_requested,
        )
        born = False
        while not self._stop_requested:
            try:
                if not born:
                    self.register_birth()
                    born = True
                if self.should_reacquire_locks:
                    self.acquire_locks()
                # heartbeat() re-acquires a lock that vanished with an emptied Redis.
                self.heartbeat()
                self.enqueue_scheduled_jobs()
                backoff.reset()
            except REDIS_DOWN as error:
                backoff.wait(error)
                continue
            time.sleep(self.interval)
        try:
            self.stop()
        except REDIS_DOWN:
            pass  # its locks expire on their own


class Worker(SimpleWorker):
    """SimpleWorker that logs each job under the request id that enqueued it, and counts it.

    SimpleWorker runs jobs in this process: the app, the database pool and the push
    connection pools outlive each job instead of being forked away (~11 ms a job).
    """

    def __init__(self, *args: Any, reconnect_max_seconds: float = 30.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reconnect_max_seconds = reconnect_max_seconds
        # RQ's own backoff inside its dequeue, which would otherwise grow to 60 s.
        self.max_connection_wait_time = reconnect_max_seconds

    def work(self, burst: bool = False, **kwargs: Any) -> bool:  # type: ignore[override]
        """Work as RQ does; when its loop ends on a lost Redis, wait for Redis and work again.

        RQ's loop quits on any Redis error outside its dequeue (a job's bookkeeping, the
        heartbeat, teardown): a worker that exits stays gone until someone restarts it.
        """
        backoff = Backoff(
            f"worker {self.name}",
            cap=self.reconnect_max_seconds,
            stopping=lambda: self._shutdown_requested_date is not None,
        )
        worked = False
        while True:
            started = time.monotonic()
            error: BaseException = ConnectionError("RQ's work loop ended")
            try:
                worked = super().work(burst=burst, **kwargs) or worked
            except REDIS_DOWN as lost:  # from teardown or bootstrap, outside RQ's loop
                error = lost
            if burst or self._shutdown_requested_date or kwargs.get("max_jobs"):
                return worked
            if time.monotonic() - started > backoff.cap:
                backoff.reset()  # it worked a while: this is a new outage, not a crash loop
            self._drop_subscription()
            if not self._wait_for_redis(backoff, error):
                return worked
            log.warning("worker %s: Redis answers; working again", self.name)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat in one round trip; registers the worker again if Redis lost it.

        redis-py retries a command that met a closed connection: a Redis restarted within
        that window comes back empty and RQ's loop never notices, so the worker kept working
        but was missing from Worker.all() (the RQ dashboard) until it was restarted.
        """
        if pipeline is not None:
            super().heartbeat(timeout, pipeline=pipeline)
            return
        with self.connection.pipeline(transaction=False) as batch:
            super().heartbeat(timeout, pipeline=batch)
            batch.sismember(worker_registration.REDIS_WORKER_KEYS, self.key)
            registered = batch.execute()[-1]
        if not registered:
            log.warning("worker %s: Redis lost its registration; registering again", self.name)
            self.connection.delete(self.key)  # the heartbeat's own half-made hash
            self.register_birth()

    def _wait_for_redis(self, backoff: Backoff, error: BaseException) -> bool:
        """Sleep with backoff until Redis answers; False if a stop was asked meanwhile."""
        while True:
            try:
                backoff.wait(error)
                if self._shutdown_requested_date:
                    return False
                self.connection.ping()
                return True
            except StopRequested:  # SIGTERM while we slept, Redis up: RQ's handler raises it
                return False
            except REDIS_DOWN as still:
                if self._shutdown_requested_date:
                    return False
                error = still

    def _drop_subscription(self) -> None:
        """Stop the command pubsub thread teardown could not stop (Redis was gone)."""
        thread = getattr(self, "pubsub_thread", None)
        if thread is None:
            return
        try:
            thread.stop()
            thread.join(timeout=1)
            if self.pubsub is not None:
                self.pubsub.close()
        except REDIS_DOWN:
            pass
        self.pubsub_thread = None

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        """Start RQ's scheduler as RQ's worker does, but the kind that survives Redis restarts."""
        self.scheduler = ResilientScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.reconnect_max_seconds = self.reconnect_max_seconds
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return  # another worker's scheduler holds them; ours takes over if it dies
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        # Jobs a request enqueued carry its id; scheduled jobs get their own.
        request_id = job.meta.get("request_id") or f"job-{job.id}"
        token = logs.request_id_var.set(request_id)
        ok = False
        try:
            ok = super().perform_job(job, queue, execution)
            return ok
        finally:
            logs.request_id_var.reset(token)
            JOB_RUNS.labels(
                job=job_name(job.func_name or "unknown"), status="ok" if ok else "failed"
            ).inc()

"""The RQ worker of `flask jobs worker`: jobs run in this process, under their request id."""

from __future__ import annotations

import logging

from rq import SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue

from .. import logs
from ..metrics import JOB_RUNS
from .schedule import job_name

log = logging.getLogger(__name__)


class Worker(SimpleWorker):
    """SimpleWorker that logs each job under the request id that enqueued it, and counts it.

    SimpleWorker runs jobs in this process: the app, the database pool and the push
    connection pools outlive each job instead of being forked away (~11 ms a job).
    """

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

"""Redis connections and queues."""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask, current_app
from redis import Redis
from redis.client import Pipeline
from rq import Queue

from ..logs import current_request_id
from ..redis_server import resolve_url
from ..util import chunked

DELIVERY_QUEUE = "push"
DEFAULT_QUEUE = "default"
QUEUES = (DELIVERY_QUEUE, DEFAULT_QUEUE)


def connection(app: Flask | None = None) -> Redis:
    """Return the app's Redis connection (created on first use)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    conn = app.extensions.get("redis")
    if conn is None:
        url = resolve_url(app.config.get("REDIS_URL"), app.instance_path)
        conn = Redis.from_url(url, health_check_interval=30)
        app.extensions["redis"] = conn
    return conn


def queue(name: str = DEFAULT_QUEUE) -> Queue:
    """Return an RQ queue on the app's Redis."""
    return Queue(name, connection=connection())


def enqueue_deliveries(
    delivery_ids: Sequence[int], *, at_front: bool = False, pipe: Pipeline | None = None
) -> int:
    """Enqueue delivery jobs carrying batches of ids; return how many jobs.

    pipe: a Redis pipeline to add them to (the caller executes it).
    """
    size = current_app.config["DELIVERY_BATCH_SIZE"]
    q = queue(DELIVERY_QUEUE)
    meta = job_meta()
    jobs = [
        Queue.prepare_data(
            "webpush_server.jobs.delivery.deliver_batch",
            args=(batch,),
            # RQ would otherwise describe the job by its call: every id again, as text.
            description=f"deliver_batch({len(batch)} deliveries)",
            timeout=600,
            result_ttl=0,
            failure_ttl=7 * 86400,
            at_front=at_front,
            meta=meta,
        )
        for batch in chunked(sorted(delivery_ids), size)
    ]
    q.enqueue_many(jobs, pipeline=pipe)
    return len(jobs)


def job_meta() -> dict:
    """Return the meta of a job enqueued now: the request id it was enqueued for, if any."""
    request_id = current_request_id()
    return {"request_id": request_id} if request_id else {}

"""Faults in delivery: a worker killed mid-batch, retries started early, Retry-After kept.

Real workers (`flask jobs worker` processes, SIGKILLed), the real Redis and RQ scheduler, and
the local push service answering slowly or with 429 where a test says so.
"""

from __future__ import annotations

import math
import os
import re
import signal
import time
from collections import Counter
from datetime import timedelta

from redis import Redis
from rq import Worker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, update

from tests.factories import add_device, bulk_users
from tests.helpers import Process, count, deliveries, process_env, wait_until
from tests.pushservice import Reply
from webpush_server.devrun import flask_command
from webpush_server.extensions import db
from webpush_server.jobs.delivery import SUB_BATCH, deliver_batch, notification_topic
from webpush_server.jobs.queues import DELIVERY_QUEUE, enqueue_deliveries
from webpush_server.jobs.sweep import sweep_outbox
from webpush_server.notifications.models import Delivery
from webpush_server.notifications.record import Notice, record_notices
from webpush_server.push.models import Subscription
from webpush_server.timeutil import utcnow

LEASE = 6  # DELIVERY_CLAIM_TIMEOUT_SECONDS: claims are renewed every 2 s


def notify_each(app, user_ids: list[int], key: str) -> list[int]:
    """Record one `test` notification per user (one delivery per device); return their ids."""
    with app.app_context():
        ids = record_notices(
            [Notice(u, "test", f"to {u}", "body", "/", f"{key}:{u}") for u in user_ids]
        )
        db.session.commit()
        return ids


def users_with_devices(app, push_service, prefix: str, n: int) -> list[int]:
    """Create n users, each with one device the local push service knows."""
    users = bulk_users(app, prefix, n)
    for user_id in users:
        add_device(app, user_id, push_service)
    return users


def endpoints_by_user(app, user_ids: list[int]) -> dict[int, str]:
    with app.app_context():
        rows = db.session.execute(
            select(Subscription.user_id, Subscription.endpoint).where(
                Subscription.user_id.in_(user_ids)
            )
        ).all()
        return {row.user_id: row.endpoint for row in rows}


def claimed_at(app) -> dict[int, object]:
    with app.app_context():
        rows = db.session.execute(
            select(Delivery.id, Delivery.claimed_at).where(Delivery.status == "sending")
        ).all()
        return {row.id: row.claimed_at for row in rows}


def start_worker(settings, app, tmp_path, name: str, **extra: str) -> Process:
    env = process_env(
        settings, app.instance_path, FLASK_DELIVERY_CLAIM_TIMEOUT_SECONDS=str(LEASE), **extra
    )
    return Process(flask_command("jobs", "worker", "--name", name), env, tmp_path / f"{name}.log")


def test_a_worker_killed_mid_batch_repeats_at_most_one_sub_batch_and_its_claims_return_soon(
    make_app, settings, push_service, redis_url, run_worker, tmp_path
):
    app = make_app(DELIVERY_CLAIM_TIMEOUT_SECONDS=LEASE)
    users = users_with_devices(app, push_service, "killed", 150)
    endpoints = endpoints_by_user(app, users)
    # The last 40 devices' push service is slow: the worker is killed while it waits.
    slow = {endpoints[u] for u in users[-40:]}
    for endpoint in slow:
        push_service.respond(endpoint, Reply(201, delay=60))
    connection = Redis.from_url(redis_url)
    # The worst case: answers wait for their sub-batch to fill before they are written (by
    # default a sub-batch is written 0.25 s after its first answer, whether full or not).
    worker = start_worker(
        settings, app, tmp_path, "doomed", FLASK_DELIVERY_WRITE_WAIT_SECONDS="3600"
    )
    try:
        wait_until(lambda: len(Worker.all(connection=connection)) == 1, "the worker listening")
        notification_ids = notify_each(app, users, "kill")
        # 110 answers came fast: two sub-batches of 50 are written while the slow 40 wait.
        push_service.wait_for_count(110, timeout=60)
        wait_until(
            lambda: count(app, Delivery, Delivery.status == "sent") >= 2 * SUB_BATCH,
            "the first sub-batches written",
        )
        assert count(app, Delivery, Delivery.status == "sending") == 150 - 2 * SUB_BATCH
        # A live worker renews its claims, and the sweeper leaves them alone.
        first = claimed_at(app)
        wait_until(
            lambda: any(claimed_at(app).get(i, t) > t for i, t in first.items()),
            "the claims renewed",
            timeout=LEASE * 2,
        )
        with app.app_context():
            sweep_outbox()
        assert count(app, Delivery, Delivery.status == "sending") == 150 - 2 * SUB_BATCH

        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait(10)
        killed_at = time.monotonic()
    finally:
        worker.stop()
    assert worker.process.returncode == -signal.SIGKILL

    def swept() -> bool:
        with app.app_context():
            sweep_outbox()
        return count(app, Delivery, Delivery.status == "sending") == 0

    # Taken back once the lease lapses, not after the old fixed 300 s.
    wait_until(swept, "the dead worker's claims taken back", timeout=LEASE * 4)
    assert time.monotonic() - killed_at < LEASE * 4
    assert count(app, Delivery, Delivery.reclaims == 1) == 150 - 2 * SUB_BATCH

    run_worker()
    assert {d.status for d in deliveries(app)} == {"sent"}
    accepted = [p for p in push_service.received if p.status == 201]
    per_endpoint = Counter(p.endpoint for p in accepted)
    assert set(per_endpoint) == set(endpoints.values())
    repeats = sum(n - 1 for n in per_endpoint.values())
    # Only answers the killed worker had not written yet are sent again: one sub-batch at most.
    assert 0 < repeats <= SUB_BATCH, repeats
    assert not any(per_endpoint[e] > 1 for e in slow), "a push nobody answered counted"
    # Each repeat carries its notification's Topic, so the service replaces the first copy.
    topics = {notification_topic(n) for n in notification_ids}
    assert {p.topic for p in accepted} == topics


def test_retries_due_together_share_one_job_due_at_the_end_of_their_second(
    app, push_service, redis_url
):
    users = users_with_devices(app, push_service, "limited", 30)
    for endpoint in endpoints_by_user(app, users).values():
        push_service.respond(endpoint, Reply(429, {"Retry-After": "2"}))
    notify_each(app, users, "limited")
    ids = [d.id for d in deliveries(app)]
    with app.app_context():
        assert deliver_batch(ids) == {"pending": 30}
    due = {d.next_attempt_at for d in deliveries(app)}
    assert len(due) == 1
    (when,) = due
    registry = ScheduledJobRegistry(DELIVERY_QUEUE, connection=Redis.from_url(redis_url))
    (job_id,) = registry.get_job_ids()
    assert registry.get_scheduled_time(job_id).timestamp() == math.ceil(when.timestamp())
    assert sorted(Job.fetch(job_id, connection=registry.connection).args[0]) == sorted(ids)


def test_a_retry_job_started_early_hands_its_deliveries_to_a_job_at_their_time(
    app, push_service, redis_url
):
    users = users_with_devices(app, push_service, "early", 3)
    notify_each(app, users, "early")
    due = utcnow() + timedelta(seconds=30.4)
    with app.app_context():
        db.session.execute(update(Delivery).values(next_attempt_at=due))
        db.session.commit()
        # RQ started it before its time: nothing is claimed, nothing sent, nothing lost.
        assert deliver_batch([d.id for d in deliveries(app)]) == {}
    assert {d.status for d in deliveries(app)} == {"pending"}
    assert push_service.received == []
    registry = ScheduledJobRegistry(DELIVERY_QUEUE, connection=Redis.from_url(redis_url))
    (job_id,) = registry.get_job_ids()
    assert registry.get_scheduled_time(job_id).timestamp() == math.ceil(due.timestamp())


def test_a_live_worker_honours_retry_after_within_two_seconds(
    make_app, settings, push_service, redis_url, tmp_path
):
    app = make_app()
    (user,) = users_with_devices(app, push_service, "patient", 1)
    (endpoint,) = endpoints_by_user(app, [user]).values()
    push_service.respond(endpoint, Reply(429, {"Retry-After": "2"}))
    connection = Redis.from_url(redis_url)
    worker = start_worker(settings, app, tmp_path, "patient")
    try:
        wait_until(lambda: len(Worker.all(connection=connection)) == 1, "the worker listening")
        notify_each(app, [user], "patient")
        limited, retried = push_service.wait_for_count(2, timeout=30)[:2]
    finally:
        worker.stop()
    assert (limited.status, retried.status) == (429, 201)
    waited = retried.received_at - limited.received_at
    assert 2 <= waited <= 4.5, waited


def test_the_retry_lane_sends_a_retry_after_while_the_worker_is_busy_with_a_long_batch(
    make_app, settings, push_service, redis_url, tmp_path
):
    app = make_app()
    users = users_with_devices(app, push_service, "busy", 4)
    endpoints = endpoints_by_user(app, users)
    limited, *slow = (endpoints[u] for u in users)
    push_service.respond(limited, Reply(429, {"Retry-After": "1"}))
    for endpoint in slow:
        # Answered just inside the sender's 10 s timeout: the batch holds the worker that long.
        push_service.respond(endpoint, Reply(201, delay=8))
    connection = Redis.from_url(redis_url)
    worker = start_worker(settings, app, tmp_path, "busy")
    try:
        wait_until(lambda: len(Worker.all(connection=connection)) == 1, "the worker listening")
        notify_each(app, users, "busy")  # one job: the 429 and the slow three together
        pushes = push_service.wait_for_count(5, timeout=60)
        wait_until(lambda: {d.status for d in deliveries(app)} == {"sent"}, "all sent")
    finally:
        worker.stop()
    log = [(p.endpoint, p.status) for p in pushes]
    assert log[0] == (limited, 429), log
    retry = log.index((limited, 201))
    answered_slowly = [i for i, (endpoint, _status) in enumerate(log) if endpoint in slow]
    # The retry went out while the slow requests of the batch were still waiting for their
    # answers: before any of them was answered, after all of them had been sent.
    assert retry < min(answered_slowly), log
    assert all(pushes[i].received_at < pushes[retry].received_at for i in answered_slowly)
    # Sent by the lane's thread, not by a job (the worker's only job was the slow batch).
    assert "[retry-lane] claimed 1 of 1 deliveries" in worker.output()
    assert sorted(d.attempts for d in deliveries(app)) == [1, 1, 1, 2]


def test_two_workers_lanes_holding_the_same_retries_send_each_once(
    make_app, settings, push_service, redis_url, tmp_path
):
    app = make_app()
    users = users_with_devices(app, push_service, "twice", 20)
    endpoints = list(endpoints_by_user(app, users).values())
    for endpoint in endpoints:
        push_service.respond(endpoint, Reply(429, {"Retry-After": "3"}))
    connection = Redis.from_url(redis_url)
    workers = [start_worker(settings, app, tmp_path, name) for name in ("left", "right")]
    try:
        wait_until(lambda: len(Worker.all(connection=connection)) == 2, "both workers listening")
        notify_each(app, users, "twice")
        wait_until(
            lambda: all(d.next_attempt_at for d in deliveries(app)), "the 429s written as retries"
        )
        ids = [d.id for d in deliveries(app)]
        # As the sweeper would after a lost job: the same ids again, before they are due.
        # Whichever worker runs such a job puts them in its own lane (the not-yet-due path).
        with app.app_context():
            for _ in range(4):
                enqueue_deliveries(ids)
        wait_until(lambda: {d.status for d in deliveries(app)} == {"sent"}, "all sent")
        push_service.wait_for(lambda p: sum(x.status == 201 for x in p) >= 20)
    finally:
        for worker in workers:
            worker.stop()
    logs = [worker.output() for worker in workers]
    # Both lanes held the rows and tried when they fell due; the claim gave each row to one.
    lane_claims = [
        re.findall(r"\[retry-lane\] claimed (\d+) of 20 deliveries", log) for log in logs
    ]
    assert all(lane_claims), logs
    assert sum(int(n) for claims in lane_claims for n in claims) == 20
    per_endpoint = {e: [p.status for p in push_service.pushes_for(e)] for e in endpoints}
    assert all(statuses == [429, 201] for statuses in per_endpoint.values()), per_endpoint
    assert {d.attempts for d in deliveries(app)} == {2}


def test_a_worker_stopping_warmly_hands_the_retries_of_its_lane_to_rq(
    make_app, settings, push_service, redis_url, tmp_path
):
    app = make_app()
    users = users_with_devices(app, push_service, "handed", 5)
    for endpoint in endpoints_by_user(app, users).values():
        push_service.respond(endpoint, Reply(429, {"Retry-After": "30"}))
    connection = Redis.from_url(redis_url)
    registry = ScheduledJobRegistry(DELIVERY_QUEUE, connection=connection)
    worker = start_worker(settings, app, tmp_path, "handing")
    try:
        wait_until(lambda: len(Worker.all(connection=connection)) == 1, "the worker listening")
        notify_each(app, users, "handed")
        wait_until(
            lambda: all(d.next_attempt_at for d in deliveries(app)), "the 429s written as retries"
        )
        # Due within RETRY_LANE_SECONDS: held in the lane, no RQ job for them.
        assert registry.get_job_ids() == []
        worker.process.send_signal(signal.SIGTERM)
        assert worker.process.wait(30) == 0
    finally:
        worker.stop()
    assert "retry lane stopping: 5 deliveries handed on to RQ's scheduler" in worker.output()
    (due,) = {d.next_attempt_at for d in deliveries(app)}
    assert {d.status for d in deliveries(app)} == {"pending"}
    (job_id,) = registry.get_job_ids()
    assert registry.get_scheduled_time(job_id).timestamp() == math.ceil(due.timestamp())
    job = Job.fetch(job_id, connection=connection)
    assert sorted(job.args[0]) == sorted(d.id for d in deliveries(app))

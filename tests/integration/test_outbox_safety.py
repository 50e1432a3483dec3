"""What keeps the outbox safe: SSRF refusals at send time, the sweeper, atomic claims."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from sqlalchemy import select, update

from tests.factories import add_device, subscribe
from tests.helpers import Process, deliveries, process_env, wait_until
from tests.pushservice import Reply
from webpush_server.devrun import flask_command
from webpush_server.extensions import db
from webpush_server.jobs.claim import claim
from webpush_server.jobs.delivery import sweep_outbox
from webpush_server.jobs.queues import DELIVERY_QUEUE, enqueue_deliveries
from webpush_server.notifications.models import Delivery
from webpush_server.notifications.record import Notice, record_notices
from webpush_server.timeutil import utcnow


def notify(app, user_id: int, key: str = "n:1", count: int = 1) -> list[int]:
    with app.app_context():
        ids = record_notices(
            [Notice(user_id, "test", f"title {i}", "body", "/", f"{key}:{i}") for i in range(count)]
        )
        db.session.commit()
        return ids


@pytest.mark.parametrize(
    ("hosts", "endpoint"),
    [
        # Listed by name, but the name resolves to loopback: DNS rebinding.
        ("localhost", "https://localhost/push/1"),
        # IP literals never reach a resolver; they are checked before connecting.
        ("127.0.0.1", "https://127.0.0.1/push/1"),
        ("169.254.169.254", "https://169.254.169.254/latest/meta-data"),
        ("10.1.2.3", "https://10.1.2.3/push/1"),
    ],
)
def test_send_time_refuses_internal_addresses(
    hosts, endpoint, settings, make_app, make_user, push_service
):
    app = make_app(PUSH_SERVICE_HOSTS=f"{hosts},{push_service.host_port}")
    user_id = make_user("ssrf@webpush-server.dev")
    add_device(app, user_id, push_service, endpoint)
    notify(app, user_id)
    with app.app_context():
        from rq import SimpleWorker

        SimpleWorker([DELIVERY_QUEUE], connection=Redis.from_url(settings["REDIS_URL"])).work(
            burst=True
        )
        row = db.session.scalars(select(Delivery)).one()
    assert row.status == "failed"
    assert "forbidden address" in row.last_error
    assert row.last_status_code is None


def test_endpoints_no_longer_allowed_are_not_contacted(app, make_user, push_service, run_worker):
    user_id = make_user("allowlist@webpush-server.dev")
    add_device(app, user_id, push_service, "https://push.attacker.example.org/x")
    notify(app, user_id)
    run_worker()
    (row,) = deliveries(app)
    assert row.status == "failed"
    assert "not an allowed push service" in row.last_error


def test_redirects_are_not_followed(patron_api, push_service, run_worker, app):
    device, elsewhere = subscribe(patron_api, push_service, 2)
    push_service.respond(device.endpoint, Reply(307, {"Location": elsewhere.endpoint}))
    patron_api.post("/api/push/test")
    run_worker()
    rows = {r.subscription_id: r for r in deliveries(app)}
    statuses = sorted((r.status, r.last_status_code) for r in rows.values())
    assert statuses == [("failed", 307), ("sent", 201)]
    # The second device got exactly its own push, not a redirected copy.
    assert len(push_service.pushes_for(elsewhere.endpoint)) == 1


def test_sweeper_delivers_what_a_crash_left_pending(
    make_app, make_user, push_service, app, run_worker, redis_url
):
    user_id = make_user("crash@webpush-server.dev")
    add_device(app, user_id, push_service)
    # The web process commits, then dies before it can enqueue: here Redis is unreachable.
    broken = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    (notification_id,) = notify(broken, user_id)
    queue = Queue(DELIVERY_QUEUE, connection=Redis.from_url(redis_url))
    assert queue.count == 0
    assert deliveries(app)[0].status == "pending"
    result = app.test_cli_runner().invoke(args=["jobs", "run", "sweep-outbox"])
    assert result.exit_code == 0, result.output
    assert "sweep-outbox: 1" in result.output
    assert queue.count == 1
    run_worker()
    (push,) = push_service.wait_for_count(1)
    assert push.notification["id"] == notification_id
    assert deliveries(app)[0].status == "sent"


def test_sweeper_takes_back_deliveries_claimed_by_a_dead_worker(
    make_user, push_service, app, run_worker
):
    user_id = make_user("deadworker@webpush-server.dev")
    add_device(app, user_id, push_service)
    notify(app, user_id)
    Queue(DELIVERY_QUEUE, connection=app.extensions["redis"]).empty()
    stale = utcnow() - timedelta(seconds=app.config["DELIVERY_CLAIM_TIMEOUT_SECONDS"] + 1)
    with app.app_context():
        db.session.execute(
            update(Delivery).values(
                status="sending", claimed_at=stale, claim_token="dead", attempts=1
            )
        )
        db.session.commit()
        assert sweep_outbox() == 1
    run_worker()
    push_service.wait_for_count(1)
    (row,) = deliveries(app)
    assert (row.status, row.attempts) == ("sent", 2)


def test_sweeper_leaves_fresh_and_future_rows_alone(make_user, push_service, make_app):
    app = make_app(SWEEP_GRACE_SECONDS=60)
    user_id = make_user("fresh@webpush-server.dev")
    add_device(app, user_id, push_service)
    notify(app, user_id)
    with app.app_context():
        assert sweep_outbox() == 0
        db.session.execute(
            update(Delivery).values(
                created_at=utcnow() - timedelta(minutes=5),
                next_attempt_at=utcnow() + timedelta(minutes=5),
            )
        )
        db.session.commit()
        assert sweep_outbox() == 0
        db.session.execute(update(Delivery).values(next_attempt_at=None))
        db.session.commit()
        assert sweep_outbox() == 1


def test_two_workers_never_send_the_same_delivery(
    settings, make_user, push_service, make_app, redis_url, tmp_path
):
    from rq import Worker
    from rq.registry import StartedJobRegistry

    app = make_app(DELIVERY_BATCH_SIZE=10)
    user_id = make_user("race@webpush-server.dev")
    for _ in range(40):
        add_device(app, user_id, push_service)
    env = process_env(settings, app.instance_path)
    workers = [
        Process(flask_command("jobs", "worker", "--name", f"w{i}"), env, tmp_path / f"w{i}.log")
        for i in range(2)
    ]
    try:
        connection = Redis.from_url(redis_url)
        wait_until(lambda: len(Worker.all(connection=connection)) == 2, "both workers listening")
        notify(app, user_id, count=5)  # 200 deliveries, enqueued in batches of 10
        ids = [d.id for d in deliveries(app)]
        assert len(ids) == 200
        with app.app_context():
            # The same batches enqueued twice more: as a sweeper racing the commit would.
            for _ in range(2):
                enqueue_deliveries(ids)
        push_service.wait_for_count(200, timeout=60)
        started = StartedJobRegistry(DELIVERY_QUEUE, connection=connection)
        wait_until(
            lambda: Queue(DELIVERY_QUEUE, connection=connection).count == 0 and started.count == 0,
            "every job finished",
        )
        wait_until(lambda: {r.status for r in deliveries(app)} == {"sent"}, "all sent")
    finally:
        for worker in workers:
            worker.stop()
    sent = [(p.endpoint, p.notification["id"]) for p in push_service.received]
    assert len(sent) == len(set(sent)) == 200
    assert all("deliver_batch" in w.output() for w in workers), "both workers took jobs"


def test_a_delivery_its_workers_keep_losing_ends_dead(make_user, push_service, app, run_worker):
    user_id = make_user("poison@webpush-server.dev")
    add_device(app, user_id, push_service)
    notify(app, user_id)
    queue = Queue(DELIVERY_QUEUE, connection=app.extensions["redis"])
    (delivery_id,) = [d.id for d in deliveries(app)]
    max_attempts = app.config["PUSH_MAX_ATTEMPTS"]
    timeout = timedelta(seconds=app.config["DELIVERY_CLAIM_TIMEOUT_SECONDS"] + 1)
    for lost in range(1, max_attempts + 1):
        queue.empty()
        with app.app_context():
            # A worker claims the delivery, then dies before it records anything.
            assert [c.id for c in claim([delivery_id], utcnow() - timeout)] == [delivery_id]
            enqueued = sweep_outbox()
        (row,) = deliveries(app)
        assert (row.attempts, row.reclaims) == (lost, lost)
        if lost < max_attempts:
            assert (row.status, enqueued) == ("pending", 1)
    assert (row.status, enqueued) == ("dead", 0)
    assert row.last_error == f"worker lost the claim {max_attempts} times"
    assert row.claim_token is None
    # Dead stays dead: the sweeper neither takes it back nor enqueues it again.
    with app.app_context():
        assert sweep_outbox() == 0
    run_worker()
    assert deliveries(app)[0].status == "dead"
    assert push_service.received == []


def test_a_lost_last_attempt_ends_dead_with_the_error_before_it(make_user, push_service, app):
    user_id = make_user("lastlost@webpush-server.dev")
    add_device(app, user_id, push_service)
    notify(app, user_id)
    max_attempts = app.config["PUSH_MAX_ATTEMPTS"]
    stale = utcnow() - timedelta(seconds=app.config["DELIVERY_CLAIM_TIMEOUT_SECONDS"] + 1)
    with app.app_context():
        # Retried after 500s, then the worker of the last attempt died.
        db.session.execute(
            update(Delivery).values(
                status="sending",
                claimed_at=stale,
                claim_token="dead",
                attempts=max_attempts,
                last_status_code=500,
                last_error="HTTP 500: oops",
            )
        )
        db.session.commit()
        assert sweep_outbox() == 0
    (row,) = deliveries(app)
    assert row.status == "dead"
    assert row.last_error == "worker lost the claim 1 time; last error: HTTP 500: oops"
    assert row.last_status_code == 500


def test_the_sweeper_takes_back_only_stale_claims(make_user, push_service, app):
    user_id = make_user("freshclaim@webpush-server.dev")
    add_device(app, user_id, push_service)
    notify(app, user_id)
    Queue(DELIVERY_QUEUE, connection=app.extensions["redis"]).empty()
    with app.app_context():
        # A live worker claimed it just now, at its last attempt: neither reclaimed nor dead.
        db.session.execute(update(Delivery).values(attempts=app.config["PUSH_MAX_ATTEMPTS"] - 1))
        db.session.commit()
        assert len(claim([d.id for d in deliveries(app)], utcnow())) == 1
        assert sweep_outbox() == 0
    (row,) = deliveries(app)
    assert (row.status, row.reclaims) == ("sending", 0)

"""Web Push delivery through the API, the outbox and the real worker, checked at the push service.

Every outcome in docs/architecture.md: sent; gone (compare-and-delete); too large (tickle);
rate-limited (Retry-After); transient (backoff, then failed); configuration error (kept).
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from tests.factories import add_device, make_vapid_pem, subscribe
from tests.helpers import deliveries, rows
from tests.pushservice import Reply
from webpush_server.config import public_url
from webpush_server.extensions import db
from webpush_server.jobs.delivery import claim, notification_topic, send_claimed
from webpush_server.jobs.queues import DELIVERY_QUEUE
from webpush_server.notifications.models import Delivery, DeliveryAttempt, Notification
from webpush_server.notifications.record import Notice, record_notices
from webpush_server.push.models import Subscription
from webpush_server.timeutil import utcnow


def attempts(app, delivery_id: int) -> list[DeliveryAttempt]:
    with app.app_context():
        rows = db.session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.attempt)
        ).all()
        db.session.expunge_all()
        return rows


PUBLIC = "https://notify.webpush-server.dev"


def tickle(app, notification_id: int) -> dict:
    """The message sent when the full one would not fit: the service worker fetches the rest."""
    return {
        "web_push": 8030,
        "notification": {
            "title": "New notification",
            "navigate": f"{public_url(app.config)}/n/{notification_id}",
            "mutable": True,
            "data": {"id": notification_id, "kind": "test", "tickle": True},
        },
    }


def test_test_notification_reaches_every_device_encrypted_and_signed(
    patron_api, push_service, run_worker, app
):
    app.config["PUBLIC_URL"] = PUBLIC
    devices = subscribe(patron_api, push_service, 2)
    response = patron_api.post("/api/push/test")
    assert response.status_code == 202
    notification_id = response.json["notification_id"]
    run_worker()
    pushes = push_service.wait_for_count(2)
    assert {p.endpoint for p in pushes} == {d.endpoint for d in devices}
    for push in pushes:
        assert push.error is None  # the service verified the JWT and decrypted the body
        assert push.jwt_claims["aud"] == push_service.origin
        assert push.jwt_claims["sub"] == "mailto:push-ops@webpush-server.dev"
        # Declarative Web Push (CONTRACT "Push"): Safari shows it as it is; a click opens
        # /n/<id> on PUBLIC_URL, which counts it and goes on to the page.
        message = push.json
        assert message == {
            "web_push": 8030,
            "notification": {
                "title": "Test notification",
                "body": "Push works on this device.",
                "navigate": f"{PUBLIC}/n/{notification_id}",
                "tag": message["notification"]["tag"],
                "icon": f"{PUBLIC}/static/icons/icon-192.png",
                "mutable": True,
                "data": {
                    "id": notification_id,
                    "kind": "test",
                    "created_at": message["notification"]["data"]["created_at"],
                    "url": "/notifications",
                },
            },
            "app_badge": 1,
        }
        assert message["notification"]["tag"] == push.notification["tag"] != ""
        assert 3500 < push.ttl <= 3600
        assert push.urgency == "high"
        # A kind without a Topic of its own gets one from the notification id, so a repeat
        # (a worker killed after the push service took it) replaces the first copy.
        assert push.topic == notification_topic(notification_id)
    rows = deliveries(app)
    assert [r.status for r in rows] == ["sent", "sent"]
    assert all(r.last_status_code == 201 and r.sent_at for r in rows)
    assert [a.status_code for a in attempts(app, rows[0].id)] == [201]
    listed = patron_api.get("/api/push/subscriptions").json["subscriptions"]
    assert all(s["last_success_at"] for s in listed)


def test_one_jwt_per_audience_is_reused(patron_api, push_service, run_worker, app):
    subscribe(patron_api, push_service, 3)
    patron_api.post("/api/push/test")
    run_worker()
    patron_api.post("/api/push/test")
    run_worker()
    pushes = push_service.wait_for_count(6)
    assert len({p.headers["Authorization"] for p in pushes}) == 1


def test_nothing_is_enqueued_for_a_rolled_back_change(app, make_user, push_service, redis_url):
    user_id = make_user("rollback@webpush-server.dev")
    add_device(app, user_id, push_service)
    with app.app_context():
        record_notices([Notice(user_id, "test", "t", "b", "/", "rollback:1")])
        db.session.rollback()
        db.session.commit()
    assert Queue(DELIVERY_QUEUE, connection=Redis.from_url(redis_url)).count == 0
    assert deliveries(app) == []


def test_dedupe_key_records_a_notification_once(app, make_user):
    user_id = make_user("dedupe@webpush-server.dev")
    with app.app_context():
        notice = Notice(user_id, "test", "t", "b", "/", "same-key")
        assert len(record_notices([notice])) == 1
        db.session.commit()
        assert record_notices([notice, notice]) == []
        db.session.commit()
        assert len(db.session.scalars(select(Notification)).all()) == 1


@pytest.mark.parametrize("status", [404, 410])
def test_gone_subscription_is_deleted(status, patron_api, push_service, run_worker, app):
    dead, alive = subscribe(patron_api, push_service, 2)
    push_service.respond(dead.endpoint, Reply(status))
    patron_api.post("/api/push/test")
    run_worker()
    assert {r.status for r in deliveries(app)} == {"gone", "sent"}
    assert [s.endpoint for s in rows(app, Subscription)] == [alive.endpoint]


def test_deletes_subscription_on_410_only_if_unchanged(patron_api, push_service, app):
    (device,) = subscribe(patron_api, push_service)
    push_service.respond(device.endpoint, Reply(410))
    patron_api.post("/api/push/test")
    ids = [d.id for d in deliveries(app)]
    now = utcnow()
    with app.app_context():  # the worker claims the batch and reads the old keys
        claimed = claim(ids, now)
    # Meanwhile the browser re-subscribes in the web process: same endpoint, new keys.
    renewed = push_service.new_subscription()
    body = device.as_json()
    body["keys"] = renewed.as_json()["keys"]
    assert patron_api.post("/api/push/subscriptions", json=body).status_code == 200
    with app.app_context():  # the worker sends to the old keys and hears 410
        send_claimed(claimed, now)
    (row,) = rows(app, Subscription)
    assert row.p256dh == renewed.p256dh
    assert deliveries(app)[0].status == "gone"


def test_413_is_resent_as_a_tickle(patron_api, push_service, run_worker, app):
    (device,) = subscribe(patron_api, push_service)
    push_service.respond(device.endpoint, Reply(413))
    notification_id = patron_api.post("/api/push/test").json["notification_id"]
    run_worker()
    first, second = push_service.wait_for_count(2)
    assert first.status == 413
    assert second.json == tickle(app, notification_id)
    (row,) = deliveries(app)
    assert (row.status, row.tickle, row.attempts) == ("sent", True, 2)
    assert [(a.outcome, a.status_code) for a in attempts(app, row.id)] == [
        ("too_large", 413),
        ("sent", 201),
    ]


def test_notification_too_big_for_a_record_goes_as_a_tickle(
    app, make_user, push_service, run_worker, patron_api
):
    (device,) = subscribe(patron_api, push_service)
    with app.app_context():
        user_id = db.session.scalar(select(Subscription.user_id))
        (notification_id,) = record_notices(
            [Notice(user_id, "test", "Long one", "é" * 3000, "/notifications", "big:1")]
        )
        db.session.commit()
    run_worker()
    (push,) = push_service.wait_for_count(1)
    assert push.json == tickle(app, notification_id)
    full = patron_api.get(f"/api/notifications/{notification_id}").json
    assert full["body"] == "é" * 3000


def test_429_honours_retry_after(patron_api, push_service, run_worker, app, redis_url):
    (device,) = subscribe(patron_api, push_service)
    push_service.respond(device.endpoint, Reply(429, {"Retry-After": "120"}))
    patron_api.post("/api/push/test")
    before = utcnow()
    run_worker()
    (row,) = deliveries(app)
    assert row.status == "pending"
    assert row.last_status_code == 429
    wait = row.next_attempt_at - before
    assert timedelta(seconds=118) < wait < timedelta(seconds=125)
    registry = ScheduledJobRegistry(DELIVERY_QUEUE, connection=Redis.from_url(redis_url))
    (job_id,) = registry.get_job_ids()
    scheduled_at = registry.get_scheduled_time(job_id)
    assert abs((scheduled_at - row.next_attempt_at).total_seconds()) < 2


def test_transient_errors_back_off_then_fail(patron_api, push_service, run_worker, app):
    from webpush_server.jobs.delivery import sweep_outbox

    (device,) = subscribe(patron_api, push_service)
    push_service.respond(device.endpoint, *[Reply(500)] * 10)
    patron_api.post("/api/push/test")
    max_attempts = app.config["PUSH_MAX_ATTEMPTS"]
    run_worker()
    rounds = 1
    while deliveries(app)[0].status == "pending" and rounds < 50:
        row = deliveries(app)[0]
        assert row.next_attempt_at is not None
        # Due almost at once (PUSH_RETRY_BASE_SECONDS is tiny in tests): sweep and work.
        with app.app_context():
            sweep_outbox()
        run_worker()
        rounds += 1
    (row,) = deliveries(app)
    assert row.status == "failed"
    assert row.attempts == max_attempts
    assert [a.status_code for a in attempts(app, row.id)] == [500] * max_attempts
    assert len(push_service.pushes_for(device.endpoint)) == max_attempts
    assert rows(app, Subscription)[0].failure_count == max_attempts


@pytest.mark.parametrize("status", [400, 401, 403])
def test_configuration_errors_fail_loudly_and_keep_the_subscription(
    status, patron_api, push_service, run_worker, app, caplog
):
    (device,) = subscribe(patron_api, push_service)
    push_service.respond(device.endpoint, Reply(status, body="bad jwt"))
    patron_api.post("/api/push/test")
    with caplog.at_level(logging.ERROR, logger="webpush_server.jobs.delivery"):
        run_worker()
    (row,) = deliveries(app)
    assert row.status == "failed"
    assert row.last_status_code == status
    assert "bad jwt" in row.last_error
    assert len(rows(app, Subscription)) == 1
    assert rows(app, Subscription)[0].last_failure_at is not None
    assert any(
        "check VAPID" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    )


def test_a_wrong_vapid_key_is_refused_by_the_service_and_nothing_is_deleted(
    make_app, push_service, redis_url, login_as
):
    from rq import SimpleWorker

    app = make_app(VAPID_PRIVATE_KEY=make_vapid_pem())
    api = login_as("wrongkey@webpush-server.dev", app=app)
    (device,) = subscribe(api, push_service)
    api.post("/api/push/test")
    with app.app_context():
        SimpleWorker([DELIVERY_QUEUE], connection=Redis.from_url(redis_url)).work(burst=True)
        row = db.session.scalars(select(Delivery)).one()
        assert row.status == "failed"
        assert row.last_status_code in (401, 403)
        assert db.session.scalars(select(Subscription)).one().endpoint == device.endpoint
    (push,) = push_service.pushes_for(device.endpoint)
    assert push.error  # the service says why it refused


def test_one_bad_endpoint_fails_alone_and_the_rest_of_its_batch_is_sent(
    app, make_user, push_service, run_worker, redis_url
):
    from collections import Counter

    from rq.registry import FailedJobRegistry

    size = app.config["DELIVERY_BATCH_SIZE"]
    assert size == 250
    user_id = make_user("batch@webpush-server.dev")
    good = [push_service.new_subscription() for _ in range(size - 1)]
    keys = push_service.new_subscription()
    # Accepted at subscribe time before endpoints had to be ASCII; the request line cannot
    # hold it. It sits in the middle of the batch, at the same push service as the others.
    bad_endpoint = f"{push_service.origin}/push/中文"
    with app.app_context():
        devices = [
            Subscription(user_id=user_id, endpoint=d.endpoint, p256dh=d.p256dh, auth=d.auth)
            for d in good
        ]
        bad = Subscription(
            user_id=user_id, endpoint=bad_endpoint, p256dh=keys.p256dh, auth=keys.auth
        )
        devices.insert(size // 2, bad)
        db.session.add_all(devices)
        db.session.commit()
        bad_id = bad.id
        record_notices([Notice(user_id, "test", "To everyone", "b", "/", "batch:1")])
        db.session.commit()
    connection = Redis.from_url(redis_url)
    assert Queue(DELIVERY_QUEUE, connection=connection).count == 1  # one job, the whole batch
    run_worker()

    pushes = push_service.wait_for_count(size - 1)
    assert sorted(p.endpoint for p in pushes) == sorted(d.endpoint for d in good)
    assert all(p.status == 201 and p.error is None for p in pushes)
    outcomes = deliveries(app)
    assert Counter(r.status for r in outcomes) == {"sent": size - 1, "failed": 1}
    (failed,) = [r for r in outcomes if r.status == "failed"]
    assert failed.subscription_id == bad_id
    assert "not ASCII" in failed.last_error
    assert [(a.outcome, a.status_code) for a in attempts(app, failed.id)] == [("error", None)]
    assert FailedJobRegistry(DELIVERY_QUEUE, connection=connection).count == 0
    # Our fault or the endpoint's, never a reason to delete the device.
    assert bad_endpoint in {s.endpoint for s in rows(app, Subscription)}


def test_a_request_that_cannot_be_built_fails_alone(patron_api, push_service, app):
    good, broken = subscribe(patron_api, push_service, 2)
    patron_api.post("/api/push/test")
    now = utcnow()
    with app.app_context():
        claimed = claim([d.id for d in deliveries(app)], now)
        # A bug upstream handed the payload builder a value JSON cannot hold.
        (item,) = [c for c in claimed if c.endpoint == broken.endpoint]
        item.title = {"not", "json"}
        assert send_claimed(claimed, now) == {"sent": 1, "failed": 1}
    rows = {r.id: r for r in deliveries(app)}
    assert rows[item.id].status == "failed"
    assert rows[item.id].last_error.startswith("TypeError")
    assert [a.outcome for a in attempts(app, item.id)] == ["error"]
    assert [p.endpoint for p in push_service.wait_for_count(1)] == [good.endpoint]

"""The daily prune: rows just past each retention window go, rows just inside it stay."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import insert

from tests.factories import create_user
from tests.helpers import count, rows
from webpush_server.extensions import db
from webpush_server.jobs.retention import prune
from webpush_server.notifications.models import Delivery, DeliveryAttempt, Notification
from webpush_server.timeutil import utcnow

HOUR = timedelta(hours=1)


def notification(user_id: int, created_days_ago: float, read: bool) -> int:
    """Insert a notification created that many days ago; return its id."""
    created = utcnow() - timedelta(days=created_days_ago)
    return db.session.scalar(
        insert(Notification)
        .values(
            user_id=user_id,
            kind="test",
            title="t",
            body="",
            url="/notifications",
            tag=uuid.uuid4().hex,
            urgency="normal",
            expires_at=created + timedelta(hours=1),
            dedupe_key=uuid.uuid4().hex,
            created_at=created,
            read_at=created + timedelta(minutes=1) if read else None,
        )
        .returning(Notification.id)
    )


def delivery(notification_id: int, status: str, created_ago: timedelta, attempts_ago=()) -> int:
    """Insert a delivery with attempts made the given times ago; return its id."""
    now = utcnow()
    delivery_id = db.session.scalar(
        insert(Delivery)
        .values(
            notification_id=notification_id,
            status=status,
            attempts=len(attempts_ago),
            created_at=now - created_ago,
        )
        .returning(Delivery.id)
    )
    for n, ago in enumerate(attempts_ago, 1):
        db.session.execute(
            insert(DeliveryAttempt).values(
                delivery_id=delivery_id, attempt=n, outcome="sent", at=now - ago
            )
        )
    return delivery_id


def test_prune_deletes_just_outside_each_window_and_keeps_just_inside(app, make_user):
    user = make_user("old@webpush-server.dev")
    days = timedelta(days=1)
    with app.app_context():
        recent = notification(user, 10, read=True)
        # Attempts: 30 days.
        young = delivery(recent, "pending", 31 * days, [30 * days - HOUR])
        aged = delivery(recent, "pending", 31 * days, [30 * days + HOUR, 29 * days])
        # Finished deliveries: 90 days, every final status; never an unfinished one.
        finished = {
            status: delivery(recent, status, 90 * days + HOUR, [10 * days])
            for status in ("sent", "failed", "gone", "expired", "dead", "skipped")
        }
        kept_finished = delivery(recent, "sent", 90 * days - HOUR, [10 * days])
        old_pending = delivery(recent, "pending", 200 * days)
        old_sending = delivery(recent, "sending", 200 * days)
        # Read notifications: 365 days, with their deliveries (finished or not) and attempts.
        gone_note = notification(user, 365 + 1 / 24, read=True)
        gone_delivery = delivery(gone_note, "pending", 10 * days, [10 * days])
        kept_note = notification(user, 365 - 1 / 24, read=True)
        kept_note_delivery = delivery(kept_note, "pending", 10 * days)
        unread_note = notification(user, 500, read=False)
        unread_delivery = delivery(unread_note, "pending", 10 * days)
        db.session.commit()

        result = prune(chunk=2)

    assert result == {"attempts": 1 + 6 + 1, "deliveries": 6 + 1, "notifications": 1}
    left = {d.id for d in rows(app, Delivery)}
    assert left == {
        young,
        aged,
        kept_finished,
        old_pending,
        old_sending,
        kept_note_delivery,
        unread_delivery,
    }
    assert not left & set(finished.values()) and gone_delivery not in left
    attempts = rows(app, DeliveryAttempt)
    assert sorted((a.delivery_id, a.attempt) for a in attempts) == sorted(
        [(young, 1), (aged, 2), (kept_finished, 1)]
    )
    assert {n.id for n in rows(app, Notification)} == {recent, kept_note, unread_note}


def test_prune_follows_the_configured_windows_and_reruns_find_nothing(make_app):
    app = make_app(
        RETENTION_ATTEMPT_DAYS=1, RETENTION_DELIVERY_DAYS=2, RETENTION_NOTIFICATION_DAYS=3
    )
    user = create_user(app, "windows@webpush-server.dev")
    days = timedelta(days=1)
    with app.app_context():
        note = notification(user, 3 + 1 / 24, read=True)
        delivery(note, "sent", 2 * days + HOUR, [days + HOUR])
        fresh = notification(user, 0, read=True)
        delivery(fresh, "sent", 2 * days + HOUR, [days + HOUR])
        delivery(fresh, "sent", 2 * days - HOUR, [days + HOUR, days - HOUR])
        db.session.commit()
        first = prune()
        again = prune()
    assert first == {"attempts": 3, "deliveries": 2, "notifications": 1}
    assert again == {"attempts": 0, "deliveries": 0, "notifications": 0}
    assert count(app, DeliveryAttempt) == 1 and count(app, Delivery) == 1

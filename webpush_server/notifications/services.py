"""The inbox: read, mark read, and the test notification."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, or_, select, update

from ..database import get_or_refuse, rows_changed
from ..errors import Invalid
from ..extensions import db
from ..push.models import Subscription
from ..timeutil import isoformat, utcnow
from .models import Delivery, Notification, ResolvedTag
from .outbox import remember_for_publish
from .record import Notice, record_notices
from .text import N_


def send_test(user_id: int) -> int:
    """Record a `test` notification for every device of user_id; return its id."""
    has_device = db.session.scalar(
        select(Subscription.id).where(Subscription.user_id == user_id).limit(1)
    )
    # With no device it reaches only the inbox and open tabs: its text must not claim push.
    body = (
        N_("Push works on this device.")
        if has_device is not None
        else N_(
            "Only in your inbox: no device has push turned on. Turn on push to get it there too."
        )
    )
    notice = Notice(
        user_id=user_id,
        kind="test",
        title=N_("Test notification"),
        body=body,
        url="/notifications",
        dedupe_key=f"test:{user_id}:{uuid.uuid4().hex}",
    )
    (notification_id,) = record_notices([notice])
    db.session.commit()
    return notification_id


def push_devices(notification_id: int) -> int:
    """Count the devices a notification goes to by Web Push (its deliveries to subscriptions)."""
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.notification_id == notification_id,
                Delivery.subscription_id.is_not(None),
            )
        )
        or 0
    )


def visible(now=None):
    """Return the condition that a notification is in the inbox now (scheduled ones wait)."""
    return Notification.visible_at <= (now or utcnow())


def list_inbox(
    user_id: int, *, unread_only: bool = False, limit: int = 50, before: int | None = None
) -> list[Notification]:
    """Return the user's notifications, newest first, keyset-paginated by id."""
    query = select(Notification).where(Notification.user_id == user_id, visible())
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    if before is not None:
        query = query.where(Notification.id < before)
    return list(db.session.scalars(query.order_by(Notification.id.desc()).limit(limit)))


def list_since(user_id: int, after: int, limit: int = 100) -> list[Notification]:
    """Return what a tab that has seen up to id after missed, oldest first (catch-up).

    Newer ids, and also anything that entered the inbox after notification `after` did: a
    scheduled notification keeps the (older) id it was given when it was scheduled but only
    becomes visible at its release. A tab may get one it already has; tabs skip known ids.
    """
    anchor = db.session.scalar(
        select(Notification.visible_at).where(
            Notification.id == after, Notification.user_id == user_id
        )
    )
    missed = Notification.id > after
    if anchor is not None:
        missed = or_(missed, Notification.visible_at > anchor)
    query = (
        select(Notification)
        .where(Notification.user_id == user_id, missed, visible())
        .order_by(Notification.id)
        .limit(limit)
    )
    return list(db.session.scalars(query))


def unread_count(user_id: int) -> int:
    """Count the user's unread notifications."""
    return db.session.execute(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None), visible())
    ).scalar_one()


def get_notification(user_id: int, notification_id: int) -> Notification:
    """Return one of the user's notifications; NotFound (also for other users' ids)."""
    return get_or_refuse(
        Notification,
        notification_id,
        field="id",
        visible=lambda row: (
            row.user_id == user_id and row.visible_at is not None and row.visible_at <= utcnow()
        ),
    )


def mark_read(user_id: int, notification_id: int) -> Notification:
    """Mark one notification read (idempotent)."""
    row = get_notification(user_id, notification_id)
    if row.read_at is None:
        row.read_at = utcnow()
        _publish_unread_count(user_id)
        db.session.commit()
    return row


def _publish_unread_count(user_id: int) -> None:
    """Tell the user's other tabs the new unread count once this transaction commits."""
    remember_for_publish([{"user_id": user_id, "unread_count": unread_count(user_id)}])


def mark_all_read(user_id: int) -> int:
    """Mark every unread notification of the user read; return how many changed."""
    count = rows_changed(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None), visible())
        .values(read_at=utcnow())
    )
    if count:
        remember_for_publish([{"user_id": user_id, "unread_count": 0}])
    db.session.commit()
    return count


RECEIPT_EVENTS = {"shown": "shown_at", "clicked": "clicked_at", "closed": "closed_at"}


def record_receipt(user_id: int, notification_id: int, event: object) -> Notification:
    """Record that a device showed, clicked or closed the notification (the first time counts)."""
    if not isinstance(event, str) or event not in RECEIPT_EVENTS:
        raise Invalid("event", "event must be one of shown, clicked, closed.")
    row = get_notification(user_id, notification_id)
    column = RECEIPT_EVENTS[event]
    if getattr(row, column) is None:
        setattr(row, column, utcnow())
    if event == "clicked" and row.shown_at is None:
        # A click proves it was shown, where the shown receipt was lost (or never sent).
        row.shown_at = row.clicked_at
    db.session.commit()
    return row


def open_notification(user_id: int, notification_id: int) -> Notification:
    """Mark the notification read and clicked (GET /n/<id>, the push message's link)."""
    row = get_notification(user_id, notification_id)
    now = utcnow()
    row.clicked_at = row.clicked_at or now
    row.shown_at = row.shown_at or row.clicked_at
    if row.read_at is None:
        row.read_at = now
        _publish_unread_count(user_id)
    db.session.commit()
    return row


# -- Replace, never stack: a settled hold or loan closes its notifications everywhere ---------

# How long devices are told about a settled tag: a shown notification lives no longer (MAX_TTL).
RESOLVED_DAYS = 30


# Built once: every settled loan and hold asks it, mostly to find nothing.
_TAGGED = select(Notification.id).where(
    Notification.user_id == bindparam("user_id"), Notification.tag == bindparam("tag")
)


def resolve_tag(user_id: int, tag: str, now: datetime | None = None) -> list[int]:
    """Mark the user's notifications with tag read and remember it settled; return ids read.

    Call it inside the transaction that settles the matter, before recording any notice about
    the new state: that notice is newer than last_id, so it stays unread and shown. Open tabs
    hear which ids were read (live), and devices close the tag's older notifications the next
    time their service worker runs.
    """
    now = now or utcnow()
    ids = list(db.session.scalars(_TAGGED, {"user_id": user_id, "tag": tag}))
    if not ids:
        return []
    unread = list(
        db.session.scalars(
            select(Notification.id).where(
                Notification.id.in_(ids), Notification.read_at.is_(None), visible(now)
            )
        )
    )
    if unread:
        db.session.execute(
            update(Notification)
            .where(Notification.id.in_(unread))
            .values(read_at=now)
            .execution_options(synchronize_session=False)
        )
    settled = db.session.scalar(
        select(ResolvedTag).where(ResolvedTag.user_id == user_id, ResolvedTag.tag == tag)
    )
    if settled is None:
        db.session.add(ResolvedTag(user_id=user_id, tag=tag, last_id=max(ids), resolved_at=now))
    else:
        settled.last_id, settled.resolved_at = max(ids), now
    db.session.flush()
    remember_for_publish(
        [
            {
                "user_id": user_id,
                "resolved": {"tag": tag, "ids": unread, "last_id": max(ids)},
                "unread_count": unread_count(user_id),
            }
        ]
    )
    return unread


def resolved_tags(user_id: int, now: datetime | None = None) -> list[dict]:
    """Return the user's tags settled lately, for the service worker to close."""
    since = (now or utcnow()) - timedelta(days=RESOLVED_DAYS)
    found = db.session.scalars(
        select(ResolvedTag)
        .where(ResolvedTag.user_id == user_id, ResolvedTag.resolved_at >= since)
        .order_by(ResolvedTag.resolved_at.desc())
        .limit(200)
    )
    return [
        {"tag": row.tag, "last_id": row.last_id, "resolved_at": isoformat(row.resolved_at)}
        for row in found
    ]

"""Who is told what: turn domain events into inbox rows and outbox deliveries.

Call record() inside the transaction that made the change; the deliveries are enqueued and the
live messages published only after that transaction commits (see outbox.py), so nothing is
sent for a rolled-back change and nothing committed is lost.

Presence-aware routing: every new notification goes to the user's open tabs. Web Push goes to
each device too, unless the user has a visible, connected tab and the kind does not ask for
push_when_visible: then the deliveries are written as `skipped` (the decision is on record) and
not enqueued.

Scheduled notices (visible_at later than now) are stored at once but wait: the inbox hides
them until visible_at, their deliveries are pending with next_attempt_at = visible_at (the
claim skips them until then, the sweeper picks them up once due), and nothing is published
live. Whoever scheduled them publishes and enqueues when they are due (release_due()).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import func, insert, select

from ..channels import quiet, route
from ..database import insert_ignoring_conflicts
from ..extensions import db
from ..push.models import Subscription
from ..timeutil import utcnow
from ..util import chunked
from .kinds import KINDS, MAX_TTL
from .models import Delivery, Notification
from .outbox import hooks, remember_for_enqueue, remember_for_publish
from .payload import notification_json

log = logging.getLogger(__name__)
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_:.-]")
# Bound the size of IN lists and insert batches: memory stays flat on big fan-outs.
CHUNK = 500


@dataclass(frozen=True)
class Notice:
    """One message for one user, before it is stored."""

    user_id: int
    kind: str
    title: str
    body: str
    url: str
    dedupe_key: str
    topic: str | None = None
    expires_at: datetime | None = None
    # The service API's options; domain notices leave them alone.
    urgency: str | None = None  # else the kind's
    visible_at: datetime | None = None  # later than now: scheduled (see below)
    data: dict | None = None
    push: bool = True  # False: the inbox and open tabs only
    # The sender's channel list (the service API's `channels`): narrows the preferences.
    channels: frozenset[str] | None = None


Recipients = dict[type, Callable[[Any], Iterable[Notice]]]
_RECIPIENTS = "webpush_server.recipients"


def recipients(app: Flask | None = None) -> Recipients:
    """Return the app's map of the system: event type → who is told what."""
    app = app or current_app
    return app.extensions.setdefault(_RECIPIENTS, {})


def register_recipients(app: Flask, table: Recipients) -> None:
    """Add a domain's RECIPIENTS table (the end of its notices.py); an event maps once."""
    known = recipients(app)
    for event_type, handler in table.items():
        if known.get(event_type, handler) is not handler:
            raise ValueError(f"{event_type.__name__} already has recipients")
        known[event_type] = handler


def record(events: Iterable[object]) -> list[int]:
    """Record the notices these domain events call for; return new notification ids."""
    table = recipients()
    notices: list[Notice] = []
    for event in events:
        handler = table.get(type(event))
        if handler is None:
            raise LookupError(f"no recipients registered for {type(event).__name__}")
        notices.extend(handler(event))
    return record_notices(notices)


def record_notices(notices: Sequence[Notice], now: datetime | None = None) -> list[int]:
    """Store notices and one pending delivery per device; skip dedupe keys already stored.

    Returns the ids of the notifications created now (duplicates are silently skipped, which
    is what makes reruns and concurrent runs of a job safe).
    """
    now = now or utcnow()
    created: list[int] = []
    for chunk in chunked(notices, CHUNK):
        rows = [_row(notice, now) for notice in chunk]
        no_push = {notice.dedupe_key for notice in chunk if not notice.push}
        inserted = db.session.execute(
            insert_ignoring_conflicts(Notification.__table__, ["dedupe_key"]).returning(
                Notification.id,
                Notification.user_id,
                Notification.kind,
                Notification.dedupe_key,
                Notification.visible_at,
            ),
            rows,
        ).all()
        if not inserted:
            continue
        created.extend(row.id for row in inserted)
        # Preferences choose the channels; push=False and the sender's list narrow them.
        chosen = route.choose(inserted, {notice.dedupe_key: notice.channels for notice in chunk})
        pushed = [r for r in inserted if r.dedupe_key not in no_push and "push" in chosen[r.id]]
        _fan_out([row for row in pushed if row.visible_at <= now], now)
        _fan_out([row for row in pushed if row.visible_at > now], now, scheduled=True)
        now_rows = [row for row in inserted if row.visible_at <= now]
        later = [row for row in inserted if row.visible_at > now]
        route.write_email_deliveries(now_rows, chosen, now)
        route.write_email_deliveries(later, chosen, now, scheduled=True)
        if now_rows:
            _remember_live(now_rows, {row["dedupe_key"]: row for row in rows})
    return created


def _row(notice: Notice, now: datetime) -> dict:
    kind = KINDS[notice.kind]
    # A scheduled notice lives from when it is due.
    start = max(now, notice.visible_at or now)
    expires_at = notice.expires_at or start + kind.ttl
    expires_at = min(expires_at, start + MAX_TTL)
    tag = notice.topic or _TAG_UNSAFE.sub("-", notice.dedupe_key)[:64]
    return {
        "user_id": notice.user_id,
        "kind": notice.kind,
        "title": notice.title[:200],
        "body": notice.body,
        "url": notice.url,
        "tag": tag,
        "urgency": notice.urgency or kind.urgency,
        "topic": notice.topic,
        "expires_at": expires_at,
        "dedupe_key": notice.dedupe_key,
        "created_at": now,
        "visible_at": start,
        "data": notice.data,
    }


def _fan_out(inserted: Sequence, now: datetime, *, scheduled: bool = False) -> None:
    """Write one pending delivery per (new notification, device of its user).

    Scheduled ones wait for their visible_at (next_attempt_at) and are neither routed by
    presence nor enqueued now: release_due() does both when they are due.
    """
    if not inserted:
        return
    user_ids = {row.user_id for row in inserted}
    devices: dict[int, list[int]] = {}
    for ids in chunked(sorted(user_ids), CHUNK):
        for sub_id, user_id in db.session.execute(
            select(Subscription.id, Subscription.user_id).where(Subscription.user_id.in_(ids))
        ):
            devices.setdefault(user_id, []).append(sub_id)
    skip_push = set() if scheduled else live_only([r for r in inserted if r.user_id in devices])
    # Inside the user's quiet hours: due when they end (the sweeper hands them over then).
    held = {} if scheduled else quiet.hold([r for r in inserted if r.user_id in devices], now)
    rows = [
        {
            "notification_id": row.id,
            "subscription_id": sub_id,
            "status": "skipped" if row.id in skip_push else "pending",
            "attempts": 0,
            "tickle": False,
            "next_attempt_at": row.visible_at if scheduled else held.get(row.id),
            "created_at": now,
        }
        for row in inserted
        for sub_id in devices.get(row.user_id, ())
    ]
    if rows:
        stored = db.session.execute(
            insert(Delivery.__table__).returning(
                Delivery.id, Delivery.status, Delivery.next_attempt_at
            ),
            rows,
        ).all()
        if not scheduled:
            remember_for_enqueue(
                row.id for row in stored if row.status == "pending" and row.next_attempt_at is None
            )


def live_only(inserted: Sequence) -> set[int]:
    """Return the ids of notifications that skip Web Push: their user has a visible tab."""
    candidates = [row for row in inserted if not KINDS[row.kind].push_when_visible]
    visible_users = hooks().visible_users
    if not candidates or visible_users is None:
        return set()
    try:
        visible = visible_users({row.user_id for row in candidates})
    except Exception:
        # Presence unknown (Redis down): push, so nobody misses a notification.
        log.warning("presence lookup failed; sending by Web Push", exc_info=True)
        return set()
    return {row.id for row in candidates if row.user_id in visible}


def _remember_live(inserted: Sequence, rows_by_key: dict[str, dict]) -> None:
    """Publish each new notification, with its user's unread count, after the commit."""
    remember_for_publish(live_messages(inserted, rows_by_key))


def live_messages(inserted: Sequence, rows_by_key: dict[str, dict]) -> list[dict]:
    """Return the live message of each notification: its JSON and its user's unread count.

    inserted holds rows with id, user_id and dedupe_key; rows_by_key the notification's
    fields by dedupe key.
    """
    user_ids = sorted({row.user_id for row in inserted})
    now = utcnow()
    unread = dict(
        db.session.execute(
            select(Notification.user_id, func.count())
            .where(
                Notification.user_id.in_(user_ids),
                Notification.read_at.is_(None),
                Notification.visible_at <= now,
            )
            .group_by(Notification.user_id)
        ).all()
    )
    fields = ("kind", "title", "body", "url", "tag", "created_at", "data")
    return [
        {
            "user_id": row.user_id,
            "notification": notification_json(
                id=row.id, **{name: rows_by_key[row.dedupe_key][name] for name in fields}
            ),
            "unread_count": unread.get(row.user_id, 0),
        }
        for row in inserted
    ]

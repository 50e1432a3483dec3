"""Who is told what: turn domain events into inbox rows and outbox deliveries.

Call record() inside the transaction that made the change; the deliveries are enqueued only
after that transaction commits (see outbox.py), so nothing is sent for a rolled-back change
and nothing committed is lost.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..push.models import Subscription
from ..timeutil import utcnow
from ..util import chunked
from .kinds import KINDS, MAX_TTL
from .models import Delivery, Notification
from .outbox import remember_for_enqueue

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


# The map of the system: event type → function naming who is told what. Domain packages
# register their rows with @notifies in their own notices.py.
RECIPIENTS: dict[type, Callable[[Any], Iterable[Notice]]] = {}


def notifies(event_type: type) -> Callable:
    """Register the function that turns events of event_type into notices."""

    def register(func: Callable[[Any], Iterable[Notice]]) -> Callable:
        RECIPIENTS[event_type] = func
        return func

    return register


def record(events: Iterable[object]) -> list[int]:
    """Record the notices these domain events call for; return new notification ids."""
    notices: list[Notice] = []
    for event in events:
        handler = RECIPIENTS.get(type(event))
        if handler is None:
            raise LookupError(f"no recipients registered for {type(event).__name__}")
        notices.extend(handler(event))
    return record_notices(notices)


def _insert_ignoring_duplicates(table):
    dialect = db.session.get_bind().dialect.name
    module = {"sqlite": sqlite, "postgresql": postgresql}.get(dialect)
    if module is None:
        raise NotImplementedError(f"dedupe inserts need SQLite or PostgreSQL, not {dialect}")
    return module.insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])


def record_notices(notices: Sequence[Notice], now: datetime | None = None) -> list[int]:
    """Store notices and one pending delivery per device; skip dedupe keys already stored.

    Returns the ids of the notifications created now (duplicates are silently skipped, which
    is what makes reruns and concurrent runs of a job safe).
    """
    now = now or utcnow()
    created: list[int] = []
    for chunk in chunked(notices, CHUNK):
        rows = [_row(notice, now) for notice in chunk]
        inserted = db.session.execute(
            _insert_ignoring_duplicates(Notification.__table__).returning(
                Notification.id, Notification.user_id
            ),
            rows,
        ).all()
        if not inserted:
            continue
        created.extend(row.id for row in inserted)
        _fan_out(inserted, now)
    return created


def _row(notice: Notice, now: datetime) -> dict:
    kind = KINDS[notice.kind]
    expires_at = notice.expires_at or now + kind.ttl
    expires_at = min(expires_at, now + MAX_TTL)
    tag = notice.topic or _TAG_UNSAFE.sub("-", notice.dedupe_key)[:64]
    return {
        "user_id": notice.user_id,
        "kind": notice.kind,
        "title": notice.title[:200],
        "body": notice.body,
        "url": notice.url,
        "tag": tag,
        "urgency": kind.urgency,
        "topic": notice.topic,
        "expires_at": expires_at,
        "dedupe_key": notice.dedupe_key,
        "created_at": now,
    }


def _fan_out(inserted: Sequence, now: datetime) -> None:
    """Write one pending delivery per (new notification, device of its user)."""
    user_ids = {row.user_id for row in inserted}
    devices: dict[int, list[int]] = {}
    for ids in chunked(sorted(user_ids), CHUNK):
        for sub_id, user_id in db.session.execute(
            select(Subscription.id, Subscription.user_id).where(Subscription.user_id.in_(ids))
        ):
            devices.setdefault(user_id, []).append(sub_id)
    rows = [
        {
            "notification_id": row.id,
            "subscription_id": sub_id,
            "status": "pending",
            "attempts": 0,
            "tickle": False,
            "created_at": now,
        }
        for row in inserted
        for sub_id in devices.get(row.user_id, ())
    ]
    if rows:
        ids = db.session.scalars(insert(Delivery.__table__).returning(Delivery.id), rows).all()
        remember_for_enqueue(ids)

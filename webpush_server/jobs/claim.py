"""Claim outbox rows atomically and read what sending them needs, as plain values."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, or_, select, update

from ..database import rows_changed
from ..extensions import db
from ..notifications.models import Delivery, Notification
from ..push.models import Subscription
from ..util import chunked


@dataclass(slots=True)
class Claimed:
    """A claimed delivery with what sending it needs: plain values, no ORM state."""

    id: int
    attempts: int
    tickle: bool
    subscription_id: int | None
    endpoint: str | None
    p256dh: str | None
    auth: str | None
    notification_id: int
    kind: str
    title: str
    body: str
    url: str
    tag: str
    urgency: str
    topic: str | None
    expires_at: datetime
    created_at: datetime
    data: dict | None = None
    claim_token: str | None = None
    channel: str = "push"
    address: str | None = None  # the e-mail address or number of an email or sms row
    fallback: bool = False
    user_id: int | None = None
    # The recipient's unread count when claimed (the message's app_badge).
    unread: int | None = None


# Users per grouped count: well inside SQLite's bound-parameter limit.
CHUNK = 500
_D, _N, _S = Delivery.__table__.c, Notification.__table__.c, Subscription.__table__.c
# Core rows, not ORM objects: building three entities per row cost more than encrypting it.
_CLAIMED_COLUMNS = (
    _D.id,
    _D.attempts,
    _D.tickle,
    _D.subscription_id,
    _S.endpoint,
    _S.p256dh,
    _S.auth,
    _N.id.label("notification_id"),
    _N.kind,
    _N.title,
    _N.body,
    _N.url,
    _N.tag,
    _N.urgency,
    _N.topic,
    _N.expires_at,
    _N.created_at,
    _N.data,
    _D.claim_token,
    _D.channel,
    _D.address,
    _D.fallback,
    _N.user_id,
)
_CLAIMED_FROM = Delivery.__table__.join(
    Notification.__table__, _N.id == _D.notification_id
).outerjoin(Subscription.__table__, _S.id == _D.subscription_id)


def claim(delivery_ids: list[int], now: datetime) -> list[Claimed]:
    """Atomically take the due pending deliveries among ids; another worker gets none of them.

    One UPDATE, one joined SELECT and the recipients' unread counts in one transaction, on
    the session's connection (Core, no ORM layer): on the latency path a transaction and a
    statement cost more than the rows they carry.
    """
    token = uuid.uuid4().hex
    ids = set(delivery_ids)
    connection = db.session.connection()
    taken = connection.execute(
        update(Delivery.__table__)
        .where(
            _D.id.in_(sorted(ids)),
            _D.status == "pending",
            or_(_D.next_attempt_at.is_(None), _D.next_attempt_at <= now),
        )
        .values(status="sending", claim_token=token, claimed_at=now, attempts=_D.attempts + 1)
    ).rowcount
    # Read before the commit: the rows are ours either way, and one transaction is cheaper.
    claimed = load(_D.claim_token == token)
    # The badges too (each push message's app_badge): a transaction of its own cost a ping,
    # BEGIN and ROLLBACK on the latency path.
    badges = unread_counts(
        {item.user_id for item in claimed if item.channel == "push" and item.user_id}, now
    )
    db.session.commit()
    for item in claimed:
        if item.channel == "push" and item.user_id:
            item.unread = badges[item.user_id]
    # Every id claimed: none of them can be pending and early (not_yet_due needs no query).
    db.session.info[_ALL_CLAIMED] = (frozenset(ids), now) if taken == len(ids) else None
    return claimed


_ALL_CLAIMED = "webpush_server.claimed_all"


def not_yet_due(delivery_ids: list[int], now: datetime) -> list[tuple[int, datetime]]:
    """Return the pending deliveries among ids that are due only after now, with when.

    A retry job that RQ starts early (its scheduler keeps whole seconds) claims none of
    them; the job hands them on to a job at their time instead of leaving them to the
    sweeper.
    """
    if db.session.info.pop(_ALL_CLAIMED, None) == (frozenset(delivery_ids), now):
        return []  # claim() just took every one of them
    rows = (
        db.session.connection()
        .execute(
            select(_D.id, _D.next_attempt_at).where(
                _D.id.in_(delivery_ids), _D.status == "pending", _D.next_attempt_at > now
            )
        )
        .all()
    )
    db.session.rollback()
    return [(row.id, row.next_attempt_at) for row in rows]


def renew(claim_tokens: set[str], now: datetime) -> int:
    """Renew the claims of a live worker: their still-sending rows were claimed now."""
    return rows_changed(
        update(Delivery.__table__)
        .where(_D.claim_token.in_(claim_tokens), _D.status == "sending")
        .values(claimed_at=now)
    )


def load(condition) -> list[Claimed]:
    """Return the deliveries matching condition with their notification and device."""
    query = select(*_CLAIMED_COLUMNS).select_from(_CLAIMED_FROM).where(condition)
    # A Row is a tuple of exactly _CLAIMED_COLUMNS; the cast only tells the type checker.
    rows = db.session.connection().execute(query.order_by(_D.id))
    return [Claimed(*cast(tuple[Any, ...], row)) for row in rows]


def unread_counts(user_ids: Iterable[int], now: datetime) -> dict[int, int]:
    """Return each of these users' unread inbox count: one grouped query per chunk of users."""
    unread = dict.fromkeys(user_ids, 0)
    for ids in chunked(sorted(unread), CHUNK):
        unread.update(
            db.session.execute(
                select(_N.user_id, func.count())
                .where(_N.user_id.in_(ids), _N.read_at.is_(None), _N.visible_at <= now)
                .group_by(_N.user_id)
            ).all()
        )
    return unread

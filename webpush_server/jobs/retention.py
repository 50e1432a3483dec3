"""Retention: delete what is too old to be of use, one short transaction per chunk.

Delivery attempts are diagnosis for a month; finished deliveries are history for a quarter;
a read notification stays in the inbox for a year, and goes together with its deliveries and
their attempts. Unread notifications and unfinished deliveries are never pruned. Each chunk
is found by a keyset scan (no lock held) and deleted in a transaction of its own, so writers
wait for one chunk at most, and a crash loses nothing but the chunk in flight.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select

from ..database import keyset_ids, rows_changed
from ..extensions import db
from ..notifications.models import Delivery, DeliveryAttempt, Notification
from ..timeutil import utcnow
from .context import app_context

log = logging.getLogger(__name__)

# Every status a delivery never leaves.
FINISHED = ("sent", "failed", "gone", "expired", "dead", "skipped")
DEFAULTS = {
    "RETENTION_ATTEMPT_DAYS": 30,
    "RETENTION_DELIVERY_DAYS": 90,
    "RETENTION_NOTIFICATION_DAYS": 365,
}

_A, _D, _N = DeliveryAttempt.__table__.c, Delivery.__table__.c, Notification.__table__.c


@dataclass
class Pruned:
    """How many rows of each kind a prune deleted."""

    attempts: int = 0
    deliveries: int = 0
    notifications: int = 0


def prune(chunk: int = 1000) -> dict[str, int]:
    """Scheduled job: delete attempts, finished deliveries and read notifications past retention."""
    with app_context():
        config = current_app.config
        now = utcnow()
        pruned = prune_before(
            attempts=now - timedelta(days=config["RETENTION_ATTEMPT_DAYS"]),
            deliveries=now - timedelta(days=config["RETENTION_DELIVERY_DAYS"]),
            notifications=now - timedelta(days=config["RETENTION_NOTIFICATION_DAYS"]),
            chunk=chunk,
        )
        log.info("pruned %s", pruned)
        return asdict(pruned)


def prune_before(
    *, attempts: datetime, deliveries: datetime, notifications: datetime, chunk: int = 1000
) -> Pruned:
    """Delete attempts made, finished deliveries created and read notifications created before.

    Returns:
        the rows deleted of each kind (the attempts of deleted deliveries included).
    """
    pruned = Pruned()
    old_attempts = select(_A.id).where(_A.at < attempts)
    for ids in keyset_ids(old_attempts, _A.id, chunk):
        pruned.attempts += rows_changed(delete(DeliveryAttempt.__table__).where(_A.id.in_(ids)))
        db.session.commit()

    finished = (_D.status.in_(FINISHED), _D.created_at < deliveries)
    for ids in keyset_ids(select(_D.id).where(*finished), _D.id, chunk):
        pruned.attempts += rows_changed(
            delete(DeliveryAttempt.__table__).where(_A.delivery_id.in_(ids))
        )
        # The conditions again: a row is deleted only as it is now, not as it was scanned.
        pruned.deliveries += rows_changed(
            delete(Delivery.__table__).where(_D.id.in_(ids), *finished)
        )
        db.session.commit()

    read = (_N.read_at.is_not(None), _N.created_at < notifications)
    for ids in keyset_ids(select(_N.id).where(*read), _N.id, chunk):
        of_these = select(_D.id).where(_D.notification_id.in_(ids)).scalar_subquery()
        pruned.attempts += rows_changed(
            delete(DeliveryAttempt.__table__).where(_A.delivery_id.in_(of_these))
        )
        pruned.deliveries += rows_changed(
            delete(Delivery.__table__).where(_D.notification_id.in_(ids))
        )
        pruned.notifications += rows_changed(
            delete(Notification.__table__).where(_N.id.in_(ids), *read)
        )
        db.session.commit()
    return pruned

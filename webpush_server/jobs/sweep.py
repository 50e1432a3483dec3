"""The outbox sweeper: take back what lost workers held, re-enqueue what was left pending.

A worker that dies mid-batch (or a job that keeps failing) leaves its deliveries `sending`.
After DELIVERY_CLAIM_TIMEOUT_SECONDS the sweeper hands them back as `pending`; each claim
counted an attempt, so a delivery that has used its PUSH_MAX_ATTEMPTS ends `dead` instead of
going round for ever.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, select, update

from ..database import keyset_ids, rows_changed
from ..extensions import db
from ..notifications.models import Delivery
from ..timeutil import utcnow
from .context import app_context
from .outcomes import MAX_ERROR
from .queues import enqueue_deliveries

log = logging.getLogger(__name__)

_D = Delivery.__table__.c
_SET_LAST_ERROR = (
    update(Delivery.__table__)
    .where(_D.id == bindparam("b_id"))
    .values(last_error=bindparam("b_last_error"))
)


def sweep_outbox(chunk: int = 1000) -> int:
    """Re-enqueue deliveries left pending (a crash between commit and enqueue, a lost job)."""
    with app_context():
        config = current_app.config
        now = utcnow()
        reclaim(
            now - timedelta(seconds=config["DELIVERY_CLAIM_TIMEOUT_SECONDS"]),
            config["PUSH_MAX_ATTEMPTS"],
        )
        # Leave just-recorded rows to the enqueue that follows their commit.
        due = now - timedelta(seconds=config["SWEEP_GRACE_SECONDS"])
        # Retries whose job was lost (Redis restarted; RQ's scheduler lock held by a dead
        # worker for a minute) are late already: they go to the front of the queue, ahead
        # of any backlog. New deliveries whose enqueue was lost go to the back.
        overdue = select(Delivery.id).where(
            Delivery.status == "pending", Delivery.next_attempt_at <= due
        )
        left = select(Delivery.id).where(
            Delivery.status == "pending",
            Delivery.next_attempt_at.is_(None),
            Delivery.created_at <= due,
        )
        total = 0
        for query, at_front in ((overdue, True), (left, False)):
            for ids in keyset_ids(query, Delivery.id, chunk):
                enqueue_deliveries(ids, at_front=at_front)
                total += len(ids)
        return total


def reclaim(stale: datetime, max_attempts: int) -> tuple[int, int]:
    """Take back deliveries claimed before stale; return how many went back and how many died.

    A delivery with attempts left goes back to `pending`. One that has used max_attempts
    (claims count, lost or not) ends `dead`, its last_error saying how often a worker lost it.
    """
    lost = (_D.status == "sending", _D.claimed_at < stale)
    taken_back = {"claim_token": None, "next_attempt_at": None, "reclaims": _D.reclaims + 1}
    given_back = rows_changed(
        update(Delivery.__table__)
        .where(*lost, _D.attempts < max_attempts)
        .values(status="pending", **taken_back)
    )
    dead = db.session.execute(
        update(Delivery.__table__)
        .where(*lost, _D.attempts >= max_attempts)
        .values(status="dead", **taken_back)
        .returning(_D.id, _D.reclaims, _D.last_error)
    ).all()
    if dead:
        db.session.execute(
            _SET_LAST_ERROR,
            [
                {"b_id": row.id, "b_last_error": lost_error(row.reclaims, row.last_error)}
                for row in dead
            ],
        )
    db.session.commit()
    if dead:
        log.warning(
            "%d deliveries are dead: workers lost them until their attempts ran out (ids %s)",
            len(dead),
            ", ".join(str(row.id) for row in dead[:20]),
        )
    return given_back, len(dead)


def lost_error(reclaims: int, last_error: str | None) -> str:
    """Return a dead delivery's last_error: the lost claims, then what went wrong before."""
    text = f"worker lost the claim {reclaims} time{'' if reclaims == 1 else 's'}"
    if last_error:
        text += f"; last error: {last_error}"
    return text[:MAX_ERROR]

"""The outbox sweeper: hand back what dead workers held, re-enqueue what was left pending."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from ..extensions import db
from ..notifications.models import Delivery
from ..timeutil import utcnow
from .context import app_context
from .keyset import keyset_ids
from .queues import enqueue_deliveries


def sweep_outbox(chunk: int = 1000) -> int:
    """Re-enqueue deliveries left pending (a crash between commit and enqueue, a lost job)."""
    with app_context():
        config = current_app.config
        now = utcnow()
        stale = now - timedelta(seconds=config["DELIVERY_CLAIM_TIMEOUT_SECONDS"])
        # A worker that died mid-batch leaves rows claimed forever: give them back.
        db.session.execute(
            update(Delivery)
            .where(Delivery.status == "sending", Delivery.claimed_at < stale)
            .values(status="pending", claim_token=None, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        # Leave just-recorded rows to the enqueue that follows their commit.
        due = now - timedelta(seconds=config["SWEEP_GRACE_SECONDS"])
        pending = select(Delivery.id).where(
            Delivery.status == "pending",
            func.coalesce(Delivery.next_attempt_at, Delivery.created_at) <= due,
        )
        total = 0
        for ids in keyset_ids(pending, Delivery.id, chunk):
            enqueue_deliveries(ids)
            total += len(ids)
        return total

"""Enqueue delivery jobs after the commit that wrote them (the transactional outbox)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db

log = logging.getLogger(__name__)
_KEY = "outbox_delivery_ids"


def remember_for_enqueue(delivery_ids: Iterable[int]) -> None:
    """Queue these deliveries for enqueueing when the current transaction commits."""
    db.session.info.setdefault(_KEY, []).extend(delivery_ids)


@event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    ids = session.info.pop(_KEY, None)
    if not ids:
        return
    # The jobs package registers the enqueuer (jobs import notifications, never the reverse).
    enqueue = current_app.extensions.get("enqueue_deliveries")
    if enqueue is None:
        return
    try:
        enqueue(ids)
    except Exception:
        # The rows are committed as pending: the sweep-outbox job will enqueue them.
        log.warning("could not enqueue %d deliveries; the sweeper will", len(ids), exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)

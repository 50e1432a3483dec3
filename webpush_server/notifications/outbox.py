"""After the commit that wrote them: enqueue delivery jobs and publish to open tabs.

This is the transactional outbox: nothing leaves before the commit, nothing committed is lost
(the sweeper re-enqueues deliveries; a tab that missed a live message catches up from the inbox).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db

log = logging.getLogger(__name__)
_KEY = "outbox_delivery_ids"
_LIVE_KEY = "outbox_live_messages"


def remember_for_enqueue(delivery_ids: Iterable[int]) -> None:
    """Queue these deliveries for enqueueing when the current transaction commits."""
    db.session.info.setdefault(_KEY, []).extend(delivery_ids)


def remember_for_publish(messages: Iterable[dict]) -> None:
    """Queue live messages ({"user_id", ...}) for publishing when the transaction commits."""
    db.session.info.setdefault(_LIVE_KEY, []).extend(messages)


@event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    messages = session.info.pop(_LIVE_KEY, None)
    if messages:
        _publish(messages)
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


def _publish(messages: list[dict]) -> None:
    # The realtime package registers the publisher (realtime imports notifications).
    publish = current_app.extensions.get("live_publish")
    if publish is None:
        return
    try:
        publish(messages)
    except Exception:
        # Push still goes out; open tabs catch up from the inbox when they reconnect or wake.
        log.warning("could not publish %d live messages", len(messages), exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)
    session.info.pop(_LIVE_KEY, None)

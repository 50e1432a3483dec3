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
def _hand_over_after_commit(session: Session) -> None:
    # Live first: an open tab hears at once; delivery jobs take a worker round trip anyway.
    # Push still goes out if publishing fails; open tabs catch up from the inbox.
    _hand_over(session.info.pop(_LIVE_KEY, None), "live_publish", "live messages")
    # Committed as pending either way: the sweep-outbox job enqueues what this misses.
    _hand_over(session.info.pop(_KEY, None), "enqueue_deliveries", "deliveries")


def _hand_over(items: list | None, hook: str, what: str) -> None:
    """Pass committed items to the hook another package registered; never fail the commit.

    Hooks live in app.extensions because realtime and jobs import notifications, never the
    reverse.
    """
    handler = current_app.extensions.get(hook) if items else None
    if handler is None:
        return
    try:
        handler(items)
    except Exception:
        log.warning("could not hand over %d %s", len(items), what, exc_info=True)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)
    session.info.pop(_LIVE_KEY, None)

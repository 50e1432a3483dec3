"""After the commit that wrote them: enqueue delivery jobs and publish to open tabs.

This is the transactional outbox: nothing leaves before the commit, nothing committed is lost
(the sweeper re-enqueues deliveries; a tab that missed a live message catches up from the inbox).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db

log = logging.getLogger(__name__)
_KEY = "outbox_delivery_ids"
_LIVE_KEY = "outbox_live_messages"


@dataclass
class OutboxHooks:
    """What receives committed work: jobs and realtime plug their functions in here.

    They live on the app because realtime and jobs import notifications, never the reverse.
    Unset hooks are skipped: the rows stay committed and the sweeper enqueues them.
    """

    # delivery ids → delivery jobs; live messages → open tabs. Both take pipe=: a Redis
    # pipeline (from `pipeline`) to add their commands to instead of sending them.
    enqueue: Callable[..., Any] | None = None
    publish: Callable[..., Any] | None = None
    visible_users: Callable[[set[int]], set[int]] | None = None  # who has a visible tab
    connected_users: Callable[[set[int]], set[int]] | None = None  # who has any open tab
    # Both of those at once, one round trip: (visible among the first, open among the second).
    presence: Callable[[set[int], set[int]], tuple[set[int], set[int]]] | None = None
    # A Redis pipeline that publish and enqueue both fill, sent as one round trip.
    pipeline: Callable[[], Any] | None = None


_HOOKS = "webpush_server.outbox"


def hooks(app: Flask | None = None) -> OutboxHooks:
    """Return the app's outbox hooks (created empty on first use)."""
    app = app or current_app
    return app.extensions.setdefault(_HOOKS, OutboxHooks())


def init_app(app: Flask) -> None:
    """Hand committed work over after each commit and forget it after each rollback."""
    hooks(app)
    for name, listener in (
        ("after_commit", _hand_over_after_commit),
        ("after_rollback", _forget_after_rollback),
    ):
        # Session-class listeners are process-wide: install them once for every app.
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def remember_for_enqueue(delivery_ids: Iterable[int]) -> None:
    """Queue these deliveries for enqueueing when the current transaction commits."""
    db.session.info.setdefault(_KEY, []).extend(delivery_ids)


def remember_for_publish(messages: Iterable[dict] | Callable[[], list[dict]]) -> None:
    """Queue live messages ({"user_id", ...}) for publishing when the transaction commits.

    messages may be a function that builds them: it is called after the commit, so building
    them (JSON of every notification) is left out of SQLite's write lock.
    """
    live = db.session.info.setdefault(_LIVE_KEY, [])
    if callable(messages):
        live.append(messages)
    else:
        live.extend(messages)


# A big recording's live messages go out this many at a time while the rest are built: its
# first tabs hear at once instead of after all of them (10,000 took ~190 ms to build and send).
# Each part is a PUBLISH per live shard (256) for every web process to read: smaller parts
# would cost the web processes more than the first tabs gain.
STREAM_BATCH = 2500


def _built(live: list | None, publish: Callable[..., Any] | None) -> list[dict]:
    """Build the remembered live messages, publishing them STREAM_BATCH at a time on the way;
    return what is left to publish.

    A part that fails to build is left out alone: its tabs catch up from the inbox.
    """
    messages: list[dict] = []
    for item in live or ():
        if callable(item):
            try:
                messages.extend(item())
            except Exception:
                # Committed either way: open tabs catch up from the inbox; the pushes still go.
                log.warning("could not build live messages", exc_info=True)
        else:
            messages.append(item)
        if publish is not None and len(messages) >= STREAM_BATCH:
            _hand_over(messages, publish, "live messages")
            messages = []
    return messages


def _hand_over_after_commit(session: Session) -> None:
    live, deliveries = session.info.pop(_LIVE_KEY, None), session.info.pop(_KEY, None)
    if not (live or deliveries):
        return
    registered = hooks()
    live = _built(live, registered.publish)
    if live and deliveries and registered.pipeline and registered.publish and registered.enqueue:
        # One Redis round trip for both (a request's latency and the web dyno's CPU). A
        # failure falls back to one at a time: a message or job sent twice is harmless (tabs
        # drop ids they have, a claimed delivery is not sent again).
        try:
            pipe = registered.pipeline()
            registered.publish(live, pipe=pipe)
            registered.enqueue(deliveries, pipe=pipe)
            pipe.execute()
            return
        except Exception:
            log.warning("could not hand over in one round trip; one at a time", exc_info=True)
    # Live first: an open tab hears at once; delivery jobs take a worker round trip anyway.
    # Push still goes out if publishing fails; open tabs catch up from the inbox.
    _hand_over(live, registered.publish, "live messages")
    # Committed as pending either way: the sweep-outbox job enqueues what this misses.
    _hand_over(deliveries, registered.enqueue, "deliveries")


def _hand_over(items: list | None, handler: Callable[[list], Any] | None, what: str) -> None:
    """Pass committed items to a hook; never fail the commit."""
    if not items or handler is None:
        return
    try:
        handler(items)
    except Exception:
        log.warning("could not hand over %d %s", len(items), what, exc_info=True)


def _forget_after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)
    session.info.pop(_LIVE_KEY, None)

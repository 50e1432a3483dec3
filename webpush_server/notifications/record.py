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
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from flask import Flask, current_app
from sqlalchemy import select

from ..channels import quiet as quiet_hours
from ..channels import route as channels
from ..channels.models import Preference
from ..channels.preferences import load_rows
from ..database import insert_rows, one_of
from ..extensions import db
from ..jobs.claim import unread_counts
from ..push.models import Subscription
from ..timeutil import utcnow
from ..util import chunked
from .kinds import KINDS, MAX_TTL
from .models import Delivery, Notification
from .outbox import hooks, remember_for_enqueue, remember_for_publish
from .payload import notification_json
from .text import Text, localize

log = logging.getLogger(__name__)
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_:.-]")
# Bound the size of IN lists and insert batches: memory stays flat on big fan-outs.
CHUNK = 500
# Deliveries per INSERT: 8 columns each stays well inside SQLite's 32,766 bound values.
DELIVERY_CHUNK = 1000


@dataclass(frozen=True)
class Notice:
    """One message for one user, before it is stored."""

    user_id: int
    kind: str
    # Text: rendered in the recipient's language when recorded (text.py); str: as given.
    title: str | Text
    body: str | Text
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


@dataclass(frozen=True)
class Routing:
    """What recording needs to know of its recipients, read before anything is written.

    On SQLite the first write takes the database lock until the commit: with these reads
    (and the Redis round trips) done first, the lock is held only for the inserts.
    """

    devices: dict[int, list[int]]  # user → push subscription ids
    quiet: set[int]  # users with a visible tab: kinds that allow it skip Web Push
    connected: set[int]  # users with an open tab: their live messages carry the count
    unread: dict[int, int]  # the connected users' unread counts before this recording
    # The recipients' preference rows (those who have one): read once, not per channel step.
    prefs: dict[int, Preference] = field(default_factory=dict)


def routing_for(notices: Iterable[Notice], now: datetime) -> Routing:
    """Read the devices, presence, unread counts and preferences recording these notices needs."""
    notices = list(notices)
    prefs = load_rows({notice.user_id for notice in notices})
    devices = _devices({notice.user_id for notice in notices if notice.push})
    due = [notice for notice in notices if (notice.visible_at or now) <= now]
    quiet, connected = _presence(
        {
            notice.user_id
            for notice in due
            if notice.user_id in devices and not KINDS[notice.kind].push_when_visible
        },
        {notice.user_id for notice in due},
    )
    return Routing(devices, quiet, connected, unread_counts(connected, now), prefs)


def record_notices(
    notices: Sequence[Notice], now: datetime | None = None, *, routing: Routing | None = None
) -> list[int]:
    """Store notices and one pending delivery per device; skip dedupe keys already stored.

    Returns the ids of the notifications created now (duplicates are silently skipped, which
    is what makes reruns and concurrent runs of a job safe). Set-based: per chunk, one read of
    the devices, one presence lookup, one INSERT of the notifications and one of the
    deliveries, whatever the number of recipients. routing: read by the caller before its
    own first write (routing_for), for these notices' users; else read here, per chunk.
    """
    now = now or utcnow()
    created: list[int] = []
    for chunk in chunked(notices, CHUNK):
        route = routing if routing is not None else routing_for(chunk, now)
        chunk = localize(chunk, route.prefs)
        rows = [_row(notice, now) for notice in chunk]
        inserted = insert_rows(
            Notification.__table__,
            rows,
            returning=("id", "dedupe_key"),
            skip_conflicts_on=("dedupe_key",),
        )
        if not inserted:
            continue
        by_key = {row["dedupe_key"]: row for row in rows}
        stored = [_stored(id_, by_key[key]) for id_, key in inserted]
        created.extend(row.id for row in stored)
        no_push = {notice.dedupe_key for notice in chunk if not notice.push}
        # Preferences choose the channels; push=False and the sender's list narrow them.
        chosen = channels.choose(
            stored, {notice.dedupe_key: notice.channels for notice in chunk}, route.prefs
        )
        pushed = [r for r in stored if r.dedupe_key not in no_push and "push" in chosen[r.id]]
        now_rows = [row for row in stored if row.visible_at <= now]
        later = [row for row in stored if row.visible_at > now]
        _fan_out(
            [row for row in pushed if row.visible_at <= now],
            route.devices,
            now,
            prefs=route.prefs,
            skip_push={
                row.id
                for row in pushed
                if row.user_id in route.quiet and not KINDS[row.kind].push_when_visible
            },
        )
        _fan_out(
            [row for row in pushed if row.visible_at > now], route.devices, now, scheduled=True
        )
        channels.write_email_deliveries(now_rows, chosen, now, prefs=route.prefs)
        channels.write_email_deliveries(later, chosen, now, scheduled=True, prefs=route.prefs)
        if now_rows:
            # The counts were read before the inserts: add what this chunk made unread.
            added: dict[int, int] = {}
            for row in now_rows:
                added[row.user_id] = added.get(row.user_id, 0) + 1
            unread = {
                user_id: route.unread.get(user_id, 0) + n
                for user_id, n in added.items()
                if user_id in route.connected
            }
            remember_for_publish(partial(_messages, now_rows, by_key, unread))
            if routing is not None:
                # A shared routing's counts move on with each chunk.
                route.unread.update(unread)
    return created


class Stored(NamedTuple):
    """A notification just inserted: what routing and the live message need of it."""

    id: int
    user_id: int
    kind: str
    dedupe_key: str
    visible_at: datetime


def _stored(id_: int, row: dict) -> Stored:
    return Stored(id_, row["user_id"], row["kind"], row["dedupe_key"], row["visible_at"])


def _devices(user_ids: set[int]) -> dict[int, list[int]]:
    """Return each user's push subscription ids (users without one are left out)."""
    devices: dict[int, list[int]] = {}
    for ids in chunked(sorted(user_ids), CHUNK):
        for sub_id, user_id in db.session.execute(_DEVICES, {"ids": ids}):
            devices.setdefault(user_id, []).append(sub_id)
    return devices


# Built once: the id list is bound per call instead of building a clause per id.
_DEVICES = select(Subscription.id, Subscription.user_id).where(one_of(Subscription.user_id, "ids"))


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
        "title": str(notice.title)[:200],
        "body": str(notice.body),
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


def _fan_out(
    inserted: Sequence[Stored],
    devices: dict[int, list[int]],
    now: datetime,
    *,
    scheduled: bool = False,
    skip_push: set[int] | None = None,
    prefs: dict[int, Preference] | None = None,
) -> None:
    """Write one delivery per (new notification, device of its user), one INSERT per batch.

    skip_push: notifications whose user has a visible tab (written as `skipped`, the decision
    on record, and not enqueued). Scheduled ones wait for their visible_at (next_attempt_at)
    and are neither routed by presence nor enqueued now: release_due() does both when due.
    """
    skip_push = skip_push or set()
    # Inside the user's quiet hours: due when they end (the sweeper hands them over then).
    held = (
        {}
        if scheduled
        else quiet_hours.hold([r for r in inserted if r.user_id in devices], now, prefs)
    )
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
    # Held by quiet hours or scheduled: the sweeper hands them over when due.
    pending: list[dict] = []
    waiting: list[dict] = []
    for r in rows:
        ready = r["status"] == "pending" and r["next_attempt_at"] is None
        (pending if ready else waiting).append(r)
    for batch in chunked(waiting, DELIVERY_CHUNK):
        insert_rows(Delivery.__table__, batch)
    for batch in chunked(pending, DELIVERY_CHUNK):
        ids = [id_ for (id_,) in insert_rows(Delivery.__table__, batch, returning=("id",))]
        if not scheduled:
            remember_for_enqueue(ids)


def _presence(visible: set[int], connected: set[int]) -> tuple[set[int], set[int]]:
    """Return (_visible_users(visible), _connected_users(connected)), in one lookup if we can."""
    lookup = hooks().presence
    if lookup is None:
        return _visible_users(visible), _connected_users(connected)
    if not (visible or connected):
        return set(), set()
    try:
        return lookup(visible, connected)
    except Exception:
        # As each lookup alone: push to everyone, count every recipient's inbox.
        log.warning("presence lookup failed; sending by Web Push", exc_info=True)
        return set(), connected


def _visible_users(user_ids: set[int]) -> set[int]:
    """Return those of user_ids with a visible tab; none when presence is unknown."""
    lookup = hooks().visible_users
    if not user_ids or lookup is None:
        return set()
    try:
        return lookup(user_ids)
    except Exception:
        # Presence unknown (Redis down): push, so nobody misses a notification.
        log.warning("presence lookup failed; sending by Web Push", exc_info=True)
        return set()


def live_only(inserted: Sequence) -> set[int]:
    """Return the ids of notifications that skip Web Push: their user has a visible tab."""
    candidates = [row for row in inserted if not KINDS[row.kind].push_when_visible]
    visible = _visible_users({row.user_id for row in candidates})
    return {row.id for row in candidates if row.user_id in visible}


def live_messages(inserted: Sequence, rows_by_key: dict[str, dict]) -> list[dict]:
    """Return the live message of each notification: its JSON, and its user's unread count.

    inserted holds rows with id, user_id and dedupe_key; rows_by_key the notification's
    fields by dedupe key. The count is looked up only for users with an open tab (one
    grouped query): nobody else reads it, and a fan-out to many users must not scan every
    recipient's inbox. A tab that opens meanwhile counts its inbox itself when it connects.
    """
    connected = _connected_users({row.user_id for row in inserted})
    return _messages(inserted, rows_by_key, unread_counts(connected, utcnow()))


def _messages(inserted: Sequence, rows_by_key: dict[str, dict], unread: dict[int, int]) -> list:
    """Build the live messages; unread holds the counts of the users that get one."""
    fields = ("kind", "title", "body", "url", "tag", "created_at", "data")
    messages = []
    for row in inserted:
        values = rows_by_key[row.dedupe_key]
        message: dict[str, Any] = {
            "user_id": row.user_id,
            "notification": notification_json(id=row.id, **{name: values[name] for name in fields}),
        }
        if row.user_id in unread:
            message["unread_count"] = unread[row.user_id]
        messages.append(message)
    return messages


def _connected_users(user_ids: set[int]) -> set[int]:
    """Return those of user_ids with an open tab; all of them when that is unknown."""
    lookup = hooks().connected_users
    if not user_ids or lookup is None:
        return user_ids
    try:
        return lookup(user_ids)
    except Exception:
        log.warning("open-tab lookup failed; counting every recipient's inbox", exc_info=True)
        return user_ids

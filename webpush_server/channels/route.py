"""Choose each new notification's channels at record time and write its e-mail/SMS rows.

Preferences decide; a sender's `channels` (the service API) can only narrow them. E-mail
goes only where MAIL_URL (or `make run`'s embedded server) is configured and the address is
not bouncing; SMS only to a verified, valid number where SMS is configured. A kind routed
`first` whose user has a push device gets its e-mail and SMS as fallbacks: due
FALLBACK_AFTER_SECONDS later, and skipped then if a push delivery was sent. SMS inside
quiet hours waits for their end, as push does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ..auth.models import User
from ..database import insert_rows
from ..extensions import db
from ..notifications.models import Delivery
from ..notifications.outbox import remember_for_enqueue
from ..push.models import Subscription
from ..util import chunked
from . import quiet, sms
from .models import Preference
from .preferences import kind_choice, load_rows

CHUNK = 500
# Deliveries per multi-row INSERT: 9 columns each stays well inside SQLite's bind limit.
DELIVERY_CHUNK = 1000


def email_available() -> bool:
    """Tell whether e-mail can be sent at all (a mail server is configured)."""
    return bool(current_app.config.get("MAIL_URL"))


def available_channels() -> tuple[str, ...]:
    """Return the channels besides push that this deployment can send on (email, sms)."""
    return tuple(c for c, ok in (("email", email_available()), ("sms", sms.available())) if ok)


def choose(
    inserted: Sequence,
    narrowed: Mapping[str, frozenset[str] | None],
    prefs: Mapping[int, Preference] | None = None,
) -> dict[int, set[str]]:
    """Return the channels of each new notification (push, email, sms) by its id.

    inserted holds rows with id, user_id, kind and dedupe_key; narrowed the sender's own
    channel list per dedupe key (None: the preferences alone decide); prefs the users'
    preference rows if the caller has read them already (record.routing_for does).
    """
    rows = load_rows(row.user_id for row in inserted) if prefs is None else prefs
    chosen: dict[int, set[str]] = {}
    # Users without a row share the kind's defaults: work those out once per kind.
    defaults: dict[str, frozenset[str]] = {}
    for row in inserted:
        pref = rows.get(row.user_id)
        base = defaults.get(row.kind) if pref is None else None
        if base is None:
            base = _channels_of(kind_choice(pref, row.kind))
            if pref is None:
                defaults[row.kind] = base
        channels = set(base)
        limit = narrowed.get(row.dedupe_key)
        if limit is not None:
            channels &= limit
        chosen[row.id] = channels
    return chosen


def _channels_of(choice: Mapping) -> frozenset[str]:
    """Return the channels a kind_choice() turns on (the digest carries e-mail instead)."""
    channels = {name for name in ("push", "email", "sms") if choice[name]}
    if choice["digest"]:
        channels.discard("email")  # the daily digest carries it instead
    return frozenset(channels)


def _address(pref: Preference | None, channel: str, emails: Mapping[int, str], user_id: int):
    """Return where this channel reaches the user, or None (bouncing, unverified, invalid)."""
    if channel == "email":
        if pref is not None and pref.email_bouncing_at is not None:
            return None
        return emails.get(user_id)
    if pref is None or pref.phone_verified_at is None or pref.phone_invalid_at is not None:
        return None
    return pref.phone_number


def write_email_deliveries(
    inserted: Sequence,
    chosen: Mapping[int, set[str]],
    now: datetime,
    *,
    scheduled: bool = False,
    prefs: Mapping[int, Preference] | None = None,
) -> list[int]:
    """Write one pending e-mail and SMS delivery per new notification that asks for them.

    Returns the ids enqueued after the commit (fallbacks, held and scheduled ones wait).
    prefs: the users' preference rows, if the caller has read them already.
    """
    channels = available_channels()
    wanted = [row for row in inserted if chosen.get(row.id, set()) & set(channels)]
    if not wanted:
        return []
    user_ids = sorted({row.user_id for row in wanted})
    emails: dict[int, str] = {}
    with_devices: set[int] = set()
    if prefs is None:
        prefs = load_rows(user_ids)
    for ids in chunked(user_ids, CHUNK):
        for user_id, address in db.session.execute(
            select(User.id, User.email).where(User.id.in_(ids))
        ):
            emails[user_id] = address
        with_devices.update(
            db.session.scalars(
                select(Subscription.user_id).where(Subscription.user_id.in_(ids)).distinct()
            )
        )
    wait = timedelta(seconds=current_app.config["FALLBACK_AFTER_SECONDS"])
    texting = [row for row in wanted if "sms" in chosen[row.id]]
    held = {} if scheduled or "sms" not in channels else quiet.hold(texting, now, prefs)
    values = []
    for row in wanted:
        pref = prefs.get(row.user_id)
        fallback = (
            kind_choice(pref, row.kind)["route"] == "first"
            and "push" in chosen[row.id]
            and row.user_id in with_devices
        )
        for channel in channels:
            address = _address(pref, channel, emails, row.user_id)
            if channel not in chosen[row.id] or address is None:
                continue
            due = row.visible_at if scheduled else None
            if fallback:
                due = max(due or now, now) + wait
            if channel == "sms" and row.id in held:
                due = max(due or now, held[row.id])
            values.append(
                {
                    "notification_id": row.id,
                    "channel": channel,
                    "address": address,
                    "fallback": fallback,
                    "status": "pending",
                    "attempts": 0,
                    "tickle": False,
                    "next_attempt_at": due,
                    "created_at": now,
                }
            )
    # Due later: the sweeper hands them over once due (fallbacks, quiet hours, scheduled).
    waiting = [row for row in values if row["next_attempt_at"] is not None]
    for batch in chunked(waiting, DELIVERY_CHUNK):
        insert_rows(Delivery.__table__, batch)
    ready: list[int] = []
    for batch in chunked([row for row in values if row["next_attempt_at"] is None], DELIVERY_CHUNK):
        ready.extend(id_ for (id_,) in insert_rows(Delivery.__table__, batch, returning=("id",)))
    remember_for_enqueue(ready)
    return ready

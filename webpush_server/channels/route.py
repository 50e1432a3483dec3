"""Choose each new notification's channels at record time and write its e-mail/SMS rows.

Preferences decide; a sender's `channels` (the service API) can only narrow them. E-mail
goes only where MAIL_URL (or `make run`'s embedded server) is configured and the address is
not bouncing. A kind routed `first` whose user has a push device gets its e-mail as a
fallback: due FALLBACK_AFTER_SECONDS later, and skipped then if a push delivery was sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import insert, select

from ..auth.models import User
from ..extensions import db
from ..notifications.models import Delivery
from ..notifications.outbox import remember_for_enqueue
from ..push.models import Subscription
from ..util import chunked
from .preferences import kind_choice, load_rows

CHUNK = 500


def email_available() -> bool:
    """Tell whether e-mail can be sent at all (a mail server is configured)."""
    return bool(current_app.config.get("MAIL_URL"))


def choose(
    inserted: Sequence, narrowed: Mapping[str, frozenset[str] | None]
) -> dict[int, set[str]]:
    """Return the channels of each new notification (push, email) by its id.

    inserted holds rows with id, user_id, kind and dedupe_key; narrowed the sender's own
    channel list per dedupe key (None: the preferences alone decide).
    """
    rows = load_rows(row.user_id for row in inserted)
    chosen: dict[int, set[str]] = {}
    for row in inserted:
        choice = kind_choice(rows.get(row.user_id), row.kind)
        channels = {name for name in ("push", "email") if choice[name]}
        if choice["digest"]:
            channels.discard("email")  # the daily digest carries it instead
        limit = narrowed.get(row.dedupe_key)
        if limit is not None:
            channels &= limit
        chosen[row.id] = channels
    return chosen


def write_email_deliveries(
    inserted: Sequence, chosen: Mapping[int, set[str]], now: datetime, *, scheduled: bool = False
) -> list[int]:
    """Write one pending e-mail delivery per new notification that asks for e-mail.

    Returns the ids to enqueue after the commit (fallbacks and scheduled ones wait).
    """
    wanted = [row for row in inserted if "email" in chosen.get(row.id, ())]
    if not wanted or not email_available():
        return []
    user_ids = sorted({row.user_id for row in wanted})
    addresses: dict[int, str] = {}
    with_devices: set[int] = set()
    prefs = load_rows(user_ids)
    for ids in chunked(user_ids, CHUNK):
        for user_id, address in db.session.execute(
            select(User.id, User.email).where(User.id.in_(ids))
        ):
            addresses[user_id] = address
        with_devices.update(
            db.session.scalars(
                select(Subscription.user_id).where(Subscription.user_id.in_(ids)).distinct()
            )
        )
    wait = timedelta(seconds=current_app.config["FALLBACK_AFTER_SECONDS"])
    values = []
    for row in wanted:
        pref = prefs.get(row.user_id)
        if pref is not None and pref.email_bouncing_at is not None:
            continue
        fallback = (
            kind_choice(pref, row.kind)["route"] == "first"
            and "push" in chosen[row.id]
            and row.user_id in with_devices
        )
        due = row.visible_at if scheduled else None
        if fallback:
            due = max(due or now, now) + wait
        values.append(
            {
                "notification_id": row.id,
                "channel": "email",
                "address": addresses[row.user_id],
                "fallback": fallback,
                "status": "pending",
                "attempts": 0,
                "tickle": False,
                "next_attempt_at": due,
                "created_at": now,
            }
        )
    if not values:
        return []
    stored = db.session.execute(
        insert(Delivery.__table__).returning(Delivery.id, Delivery.next_attempt_at), values
    ).all()
    # Due later: the sweeper hands them over once due (fallbacks, scheduled notices).
    ready = [row.id for row in stored if row.next_attempt_at is None]
    remember_for_enqueue(ready)
    return ready

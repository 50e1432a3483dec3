"""Quiet hours: push (and SMS) that would arrive inside a user's window wait until it ends.

A notice that would expire before the window ends goes at once instead, with Urgency low
(the push service may then hold it for a quiet moment of the device). E-mail, the inbox and
the `test` kind are never held.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from ..extensions import db
from ..notifications.models import Notification
from .models import Preference
from .preferences import load_rows, timezone_of

NEVER_HELD = {"test", "password_reset", "digest"}


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone)


def quiet_end(now: datetime, start: str, end: str, zone: ZoneInfo) -> datetime | None:
    """Return when the quiet window around now ends (UTC), or None if now is outside it.

    start and end are "HH:MM" on the user's wall clock; a window whose start is later than
    its end runs across midnight (22:00–08:00).
    """
    local = now.astimezone(zone)
    today, clock = local.date(), local.time().replace(tzinfo=None)
    begin, finish = _clock(start), _clock(end)
    if begin < finish:
        inside, ends_on = begin <= clock < finish, today
    elif clock >= begin:
        inside, ends_on = True, today + timedelta(days=1)
    else:
        inside, ends_on = clock < finish, today
    if not inside:
        return None
    return _at(ends_on, finish, zone).astimezone(now.tzinfo)


def hold(
    inserted: Sequence, now: datetime, prefs: Mapping[int, Preference] | None = None
) -> dict[int, datetime]:
    """Return when each new notification's push may go, for those inside quiet hours.

    Those that would expire before their window ends are not held: their urgency becomes
    low (written here, in the recording transaction) and they go now. prefs: the users'
    preference rows, already read by the caller (else read here).
    """
    candidates = [row for row in inserted if row.kind not in NEVER_HELD]
    if prefs is None:
        prefs = load_rows(row.user_id for row in candidates)
    ends: dict[int, datetime] = {}
    for row in candidates:
        pref = prefs.get(row.user_id)
        if pref is None or not (pref.quiet_start and pref.quiet_end):
            continue
        when = quiet_end(now, pref.quiet_start, pref.quiet_end, ZoneInfo(timezone_of(pref)))
        if when is not None:
            ends[row.id] = when
    if not ends:
        return {}
    expiring = {
        row.id: row.expires_at
        for row in db.session.execute(
            select(Notification.id, Notification.expires_at).where(
                Notification.id.in_(sorted(ends))
            )
        )
    }
    urgent = [nid for nid, when in ends.items() if expiring[nid] <= when]
    if urgent:
        db.session.execute(
            update(Notification).where(Notification.id.in_(urgent)).values(urgency="low")
        )
    return {nid: when for nid, when in ends.items() if nid not in urgent}

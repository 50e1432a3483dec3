"""The daily digest: one e-mail a day, at each user's digest hour, of their unread notices of
the kinds they marked `digest`.

`send-digests` runs hourly (instance `hour=YYYY-MM-DDTHH`, UTC). For each user with
preferences, the hour is theirs when it is their digest_hour on their own wall clock; the
digest is recorded as a notice (e-mail only) with the dedupe key of their local date, so it
goes once a day however often the job runs, and not at all when nothing is unread.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..extensions import db
from ..jobs.batch import BatchJob, Step
from ..jobs.schedule import ScheduledJob
from ..notifications.models import Notification
from ..notifications.record import Notice, record_notices
from ..notifications.text import N_, Later
from ..timeutil import local_time
from .models import Preference
from .preferences import kind_choice, matrix_kinds, timezone_of

CHUNK = 200
MAX_LISTED = 50  # a digest lists at most this many; the rest wait in the inbox


def scheduled() -> list[ScheduledJob]:
    """Return the channels' cron entries (UTC)."""
    return [
        ScheduledJob(
            "send-digests",
            "15 * * * *",
            "webpush_server.channels.digest.send_digests",
            "e-mail each user their unread digest kinds at their digest hour",
        )
    ]


def _steps(at: datetime) -> list[Step]:
    reader = select(Preference.user_id)
    return [Step("digested", reader, Preference.user_id, lambda uid: send_digest(uid, at), CHUNK)]


def send_digest(user_id: int, at: datetime) -> int:
    """Record this user's digest if at is within their digest hour; return 1 if recorded."""
    pref = db.session.get(Preference, user_id)
    if pref is None:
        return 0
    kinds = [kind for kind in matrix_kinds() if kind_choice(pref, kind)["digest"]]
    zone = ZoneInfo(timezone_of(pref))
    local = at.astimezone(zone)
    if not kinds or local.hour != pref.digest_hour:
        db.session.rollback()
        return 0
    unread = db.session.execute(
        select(Notification.id, Notification.kind, Notification.title, Notification.body)
        .where(
            Notification.user_id == user_id,
            Notification.kind.in_(kinds),
            Notification.read_at.is_(None),
            Notification.visible_at.is_not(None),
            Notification.visible_at <= at,
            Notification.created_at > at - timedelta(days=1),
        )
        .order_by(Notification.id)
        .limit(MAX_LISTED)
    ).all()
    if not unread:
        db.session.rollback()
        return 0
    day = local.date().isoformat()
    created = record_notices(
        [
            Notice(
                user_id=user_id,
                kind="digest",
                title=N_("Your notices of %(day)s", day=Later.of(local_time, local.date())),
                body=N_("1 unread notice")
                if len(unread) == 1
                else N_("%(n)d unread notices", n=len(unread)),
                url="/notifications",
                dedupe_key=f"digest:{user_id}:{day}",
                data={
                    "items": [
                        {"id": n.id, "kind": n.kind, "title": n.title, "body": n.body}
                        for n in unread
                    ]
                },
                push=False,
                channels=frozenset({"email"}),
            )
        ]
    )
    db.session.commit()
    return len(created)


send_digests = BatchJob("send-digests", _steps)

"""Scheduled library jobs: they detect what time changes and call the same services."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import exists, select

from ..database import keyset_ids
from ..jobs.context import app_context
from ..jobs.schedule import ScheduledJob
from ..timeutil import utcnow
from . import services
from .models import Book, Copy, Hold

CHUNK = 200


def scheduled() -> list[ScheduledJob]:
    """Return the library's cron entries (UTC)."""
    return [
        ScheduledJob(
            "detect-available-books",
            "* * * * *",
            "webpush_server.library.jobs.detect_available_books",
            "give free copies to waiting holds the event path missed",
        ),
        ScheduledJob(
            "expire-holds",
            "* * * * *",
            "webpush_server.library.jobs.expire_holds",
            "end ready holds past their pickup deadline and pass the copy on",
        ),
        ScheduledJob(
            "remind-holds",
            "*/10 * * * *",
            "webpush_server.library.jobs.remind_holds",
            "tell patrons one day before a ready hold lapses",
        ),
    ]


def detect_available_books() -> int:
    """Give free copies to waiting holds for every book where both exist."""
    with app_context():
        stmt = select(Book.id).where(
            exists().where(Copy.book_id == Book.id, Copy.status == "shelf"),
            exists().where(Hold.book_id == Book.id, Hold.status == "waiting"),
        )
        # One short transaction per book: the desk never waits behind a long scan.
        return sum(
            services.fill_book(book_id)
            for ids in keyset_ids(stmt, Book.id, CHUNK)
            for book_id in ids
        )


def expire_holds() -> int:
    """Expire ready holds past their deadline; their copies go to the next in line."""
    with app_context():
        now = utcnow()
        stmt = select(Hold.id).where(Hold.status == "ready", Hold.pickup_deadline <= now)
        return sum(
            services.expire_hold(hold_id)
            for ids in keyset_ids(stmt, Hold.id, CHUNK)
            for hold_id in ids
        )


def remind_holds() -> int:
    """Record `hold_expiring` for ready holds whose deadline is within a day (once each)."""
    with app_context():
        now = utcnow()
        stmt = select(Hold.id).where(
            Hold.status == "ready",
            Hold.pickup_deadline > now,
            Hold.pickup_deadline <= now + timedelta(days=1),
        )
        return sum(services.remind(ids) for ids in keyset_ids(stmt, Hold.id, CHUNK))

"""Scheduled library jobs: they detect what time changes and call the same services.

Each is a batch job (jobs.batch): an instance per occurrence, its scan read in keyset chunks
with a checkpoint after each, every item changed in a transaction of its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import exists, select

from ..jobs.batch import BatchJob, Step
from ..jobs.schedule import ScheduledJob
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


def _detect_available_books(at: datetime) -> list[Step]:
    """Give free copies to waiting holds for every book where both exist."""
    stmt = select(Book.id).where(
        exists().where(Copy.book_id == Book.id, Copy.status == "shelf"),
        exists().where(Hold.book_id == Book.id, Hold.status == "waiting"),
    )
    # One short transaction per book: the desk never waits behind a long scan.
    return [Step("filled", stmt, Book.id, services.fill_book, CHUNK)]


def _expire_holds(at: datetime) -> list[Step]:
    """Expire ready holds past their deadline; their copies go to the next in line."""
    stmt = select(Hold.id).where(Hold.status == "ready", Hold.pickup_deadline <= at)
    return [Step("expired", stmt, Hold.id, services.expire_hold, CHUNK)]


def _remind_holds(at: datetime) -> list[Step]:
    """Record `hold_expiring` for ready holds whose deadline is within a day (once each)."""
    stmt = select(Hold.id).where(
        Hold.status == "ready",
        Hold.pickup_deadline > at,
        Hold.pickup_deadline <= at + timedelta(days=1),
    )
    return [Step("reminded", stmt, Hold.id, services.remind, CHUNK, batch=True)]


detect_available_books = BatchJob("detect-available-books", _detect_available_books)
expire_holds = BatchJob("expire-holds", _expire_holds)
remind_holds = BatchJob("remind-holds", _remind_holds)

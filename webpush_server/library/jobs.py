"""Scheduled library jobs: they detect what time changes and call the same services.

Each is a batch job (jobs.batch): an instance per occurrence, its scan read in keyset chunks
with a checkpoint after each, every item changed in a transaction of its own.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import exists, select

from ..channels.preferences import MAX_DAYS_BEFORE
from ..jobs.batch import BatchJob, Step
from ..jobs.schedule import ScheduledJob
from . import services
from .models import Book, Copy, Hold, Loan
from .notices import OVERDUE_DAYS

CHUNK = 200
LOAN_CHUNK = 500
# Local APP_TIMEZONE wall clock of the daily library jobs.
LOAN_REMINDER_TIME = time(9, 0)
HOLD_RESUME_TIME = time(6, 0)
# A missed day of remind-loans still sends its overdue reminder this many days late.
OVERDUE_CATCH_UP_DAYS = 2


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
        ScheduledJob(
            "remind-loans",
            None,
            "webpush_server.library.jobs.remind_loans",
            "remind borrowers before the due date and 1, 7 and 14 days after",
            daily_at=LOAN_REMINDER_TIME,
        ),
        ScheduledJob(
            "resume-holds",
            None,
            "webpush_server.library.jobs.resume_holds",
            "resume suspended holds and expire holds past their not-needed-after date",
            daily_at=HOLD_RESUME_TIME,
        ),
    ]


def _detect_available_books(at: datetime) -> list[Step]:
    """Give free copies to waiting holds for every book where both exist."""
    stmt = select(Book.id).where(
        exists().where(Copy.book_id == Book.id, Copy.status == "shelf"),
        exists().where(
            Hold.book_id == Book.id,
            Hold.status == "waiting",
            services.not_suspended(services.local_day(at)),
        ),
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


def _loan_id(key: tuple) -> int:
    return key[1]


def _remind_loans(at: datetime) -> list[Step]:
    """Record `loan_due_soon` and `loan_overdue` for the day `at` falls on (local)."""
    day = services.local_day(at)
    first = day - timedelta(days=max(OVERDUE_DAYS) + OVERDUE_CATCH_UP_DAYS)
    # Read by (due_date, id) on the partial index of active loans: only loans near their
    # due date are read, however many are out.
    near = select(Loan.due_date, Loan.id).where(
        Loan.returned_at.is_(None),
        Loan.due_date >= first,
        # As far ahead as any borrower's days_before may reach; the handler applies each one's.
        Loan.due_date <= day + timedelta(days=MAX_DAYS_BEFORE),
    )
    return [
        Step(
            "reminded",
            near,
            (Loan.due_date, Loan.id),
            lambda loan_ids: services.remind_loans(loan_ids, day),
            LOAN_CHUNK,
            batch=True,
            item=_loan_id,
        )
    ]


def _resume_holds(at: datetime) -> list[Step]:
    """Expire holds no longer needed, then resume suspensions that end today (local)."""
    day = services.local_day(at)
    unneeded = select(Hold.id).where(Hold.status == "waiting", Hold.not_needed_after < day)
    due = select(Hold.id).where(Hold.status == "waiting", Hold.suspended_until <= day)
    return [
        Step("expired", unneeded, Hold.id, lambda i: services.expire_unneeded(i, day), CHUNK),
        Step("resumed", due, Hold.id, lambda i: services.resume_hold(i, day), CHUNK),
    ]


detect_available_books = BatchJob("detect-available-books", _detect_available_books)
expire_holds = BatchJob("expire-holds", _expire_holds)
remind_holds = BatchJob("remind-holds", _remind_holds)
remind_loans = BatchJob("remind-loans", _remind_loans)
resume_holds = BatchJob("resume-holds", _resume_holds)

"""Who is told what in the library."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from sqlalchemy import bindparam, select

from ..channels.preferences import kind_choice, load_rows
from ..extensions import db
from ..notifications.record import Notice, Recipients
from ..notifications.text import N_, Later
from ..timeutil import app_zone, local_time, utcnow
from .events import (
    HoldBecameReady,
    HoldCancelledByLibrary,
    HoldExpired,
    HoldExpiringSoon,
    HoldMovedUp,
    HoldResumed,
    LoanRenewed,
    LoansDue,
)
from .models import Book, Copy, Hold, Loan

# loan_due_soon goes this many days before the due date unless the borrower's preferences
# say otherwise (`days_before`, 1 to MAX_DAYS_BEFORE; its default there is the same).
DAYS_BEFORE = 2
# loan_overdue goes this many days after the due date, each once.
OVERDUE_DAYS = (1, 7, 14)


def hold_url(hold_id: int) -> str:
    """Return the page of one hold: where a notification about it opens."""
    return f"/library/holds/{hold_id}"


# One read of the hold with its book's title, built once: on the check-in's latency path.
_HOLD_WITH_TITLE = (
    select(Hold.user_id, Hold.pickup_deadline, Book.title)
    .join(Book, Book.id == Hold.book_id)
    .where(Hold.id == bindparam("hold_id"))
)


def book_available(event: HoldBecameReady) -> list[Notice]:
    """The patron whose hold became ready: pick it up before the deadline."""
    hold = db.session.execute(_HOLD_WITH_TITLE, {"hold_id": event.hold_id}).one()
    return [
        Notice(
            user_id=hold.user_id,
            kind="book_available",
            title=N_("Your book is ready: %(title)s", title=hold.title),
            body=N_(
                "Copy %(copy)s is waiting for you at the desk until %(deadline)s.",
                copy=event.copy_id,
                deadline=Later.of(local_time, hold.pickup_deadline, "notice"),
            ),
            url=hold_url(event.hold_id),
            dedupe_key=f"hold-ready:{event.hold_id}",
            topic=f"hold-{event.hold_id}",
            expires_at=hold.pickup_deadline,
        )
    ]


def hold_expiring(event: HoldExpiringSoon) -> list[Notice]:
    """The patron whose ready hold lapses within a day."""
    hold = db.session.get(Hold, event.hold_id)
    if hold is None or hold.status != "ready":
        return []
    return [
        Notice(
            user_id=hold.user_id,
            kind="hold_expiring",
            title=N_(
                "Pick up %(title)s by %(deadline)s",
                title=hold.book.title,
                deadline=Later.of(local_time, hold.pickup_deadline, "notice"),
            ),
            body=N_(
                "Your copy is set aside for one more day; after that it goes to the next reader."
            ),
            url=hold_url(hold.id),
            dedupe_key=f"hold-expiring:{hold.id}",
            topic=f"hold-{hold.id}",
        )
    ]


def hold_expired(event: HoldExpired) -> list[Notice]:
    """The patron who did not collect a ready hold in time."""
    hold = db.session.get_one(Hold, event.hold_id)
    return [
        Notice(
            user_id=hold.user_id,
            kind="hold_expired",
            title=N_("Your hold on %(title)s has lapsed", title=hold.book.title),
            body=N_(
                "The pickup deadline passed, so the copy went to the next reader. "
                "You can reserve the book again."
            ),
            url=hold_url(hold.id),
            dedupe_key=f"hold-expired:{hold.id}",
            topic=f"hold-{hold.id}",
        )
    ]


def loan_url(loan_id: int) -> str:
    """Return where a notification about a loan opens: My loans, at that loan."""
    return f"/library/loans#loan-{loan_id}"


def loan_topic(loan_id: int) -> str:
    """Return the tag and Topic every notification about one loan carries."""
    return f"loan-{loan_id}"


def hold_topic(hold_id: int) -> str:
    """Return the tag and Topic every notification about one hold carries."""
    return f"hold-{hold_id}"


def _end_of(day: date) -> datetime:
    """Return the UTC instant the local day ends."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=app_zone())


def loans_due(event: LoansDue) -> Iterator[Notice]:
    """Each borrower of a loan due soon (days_before) or overdue by 1, 7 or 14 days."""
    found = db.session.execute(
        select(Loan.id, Loan.user_id, Loan.due_date, Book.title)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Book, Book.id == Copy.book_id)
        .where(Loan.id.in_(event.loan_ids), Loan.returned_at.is_(None))
    ).all()
    prefs = load_rows(user_id for _, user_id, _, _ in found)
    for loan_id, user_id, due, title in found:
        ahead = (due - event.day).days
        # Each borrower's own days_before (preferences), else the default.
        days_before = kind_choice(prefs.get(user_id), "loan_due_soon").get("days_before")
        if 0 <= ahead <= (days_before or DAYS_BEFORE):
            due_on = Later.of(local_time, due)
            if ahead == 0:
                heading = N_("%(title)s is due today", title=title)
            elif ahead == 1:
                heading = N_("%(title)s is due tomorrow", title=title)
            else:
                heading = N_("%(title)s is due on %(due)s", title=title, due=due_on)
            yield Notice(
                user_id=user_id,
                kind="loan_due_soon",
                title=heading,
                body=N_(
                    "Please return it by %(due)s, or renew it on My loans if nobody is waiting.",
                    due=due_on,
                ),
                url=loan_url(loan_id),
                dedupe_key=f"loan-due-soon:{loan_id}:{due}",
                topic=loan_topic(loan_id),
                expires_at=_end_of(due),
            )
            continue
        late = -ahead
        passed = [days for days in OVERDUE_DAYS if days <= late]
        if not passed:
            continue
        # The latest reminder whose day has come; a missed day catches up, none repeats.
        stage = passed[-1]
        yield Notice(
            user_id=user_id,
            kind="loan_overdue",
            title=N_("%(title)s is overdue", title=title),
            body=N_(
                "It was due on %(due)s (1 day ago). Please bring it back to the desk.",
                due=Later.of(local_time, due),
            )
            if late == 1
            else N_(
                "It was due on %(due)s (%(late)d days ago). Please bring it back to the desk.",
                due=Later.of(local_time, due),
                late=late,
            ),
            url=loan_url(loan_id),
            dedupe_key=f"loan-overdue:{loan_id}:{due}:{stage}",
            topic=loan_topic(loan_id),
        )


def loan_renewed(event: LoanRenewed) -> list[Notice]:
    """The borrower: the loan runs longer now."""
    loan = db.session.get_one(Loan, event.loan_id)
    title = loan.copy.book.title
    return [
        Notice(
            user_id=loan.user_id,
            kind="loan_renewed",
            title=N_(
                "Renewed: %(title)s, now due %(due)s",
                title=title,
                due=Later.of(local_time, loan.due_date),
            ),
            body=N_("Renewal %(n)d of 2. Enjoy the extra time.", n=loan.renewals),
            url=loan_url(loan.id),
            dedupe_key=f"loan-renewed:{loan.id}:{loan.renewals}",
            topic=loan_topic(loan.id),
        )
    ]


def hold_position(event: HoldMovedUp) -> list[Notice]:
    """The patron whose place moved up: at most one a day per hold (the newest replaces)."""
    from .services import queue_position

    hold = db.session.get(Hold, event.hold_id)
    if hold is None or hold.status != "waiting":
        return []
    position = queue_position(hold)
    today = utcnow().astimezone(app_zone()).date()
    if position == 1:
        heading = N_("You are next for %(title)s", title=hold.book.title)
    else:
        heading = N_(
            "You are number %(position)s for %(title)s", position=position, title=hold.book.title
        )
    return [
        Notice(
            user_id=hold.user_id,
            kind="hold_position",
            title=heading,
            body=N_("Your place in the queue moved up. We will tell you when a copy is yours."),
            url=hold_url(hold.id),
            dedupe_key=f"hold-position:{hold.id}:{today}",
            topic=hold_topic(hold.id),
        )
    ]


def hold_cancelled(event: HoldCancelledByLibrary) -> list[Notice]:
    """The patron whose hold the library cancelled, with the librarian's note."""
    hold = db.session.get_one(Hold, event.hold_id)
    note = (
        N_("The library says: %(note)s", note=hold.note)
        if hold.note
        else N_("Ask at the desk why.")
    )
    return [
        Notice(
            user_id=hold.user_id,
            kind="hold_cancelled",
            title=N_("Your hold on %(title)s was cancelled", title=hold.book.title),
            body=note,
            url=hold_url(hold.id),
            dedupe_key=f"hold-cancelled:{hold.id}",
            topic=hold_topic(hold.id),
        )
    ]


def hold_resumed(event: HoldResumed) -> list[Notice]:
    """The patron whose suspended hold is active again."""
    hold = db.session.get_one(Hold, event.hold_id)
    return [
        Notice(
            user_id=hold.user_id,
            kind="hold_resumed",
            title=N_("Your hold on %(title)s is active again", title=hold.book.title),
            body=N_("It kept its place in the queue; copies go to it again from today."),
            url=hold_url(hold.id),
            dedupe_key=f"hold-resumed:{hold.id}:{event.until}",
            topic=hold_topic(hold.id),
        )
    ]


# Who is told what in the library: registered by library.init_app.
RECIPIENTS: Recipients = {
    HoldBecameReady: book_available,
    HoldExpiringSoon: hold_expiring,
    HoldExpired: hold_expired,
    HoldMovedUp: hold_position,
    HoldCancelledByLibrary: hold_cancelled,
    HoldResumed: hold_resumed,
    LoanRenewed: loan_renewed,
    LoansDue: loans_due,
}

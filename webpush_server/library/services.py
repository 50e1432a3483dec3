"""The library desk and the hold queue. Each public function is one transaction."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from flask import current_app
from flask_babel import gettext, lazy_gettext
from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from ..admin import audit
from ..auth.models import User
from ..auth.services import find_user
from ..database import Raced, get_or_refuse, retry_on_conflict, rows_changed, run
from ..errors import (
    Conflict,
    Forbidden,
    Invalid,
    InvalidFields,
    NotFound,
    Refused,
    as_id,
    whole_number,
)
from ..extensions import db
from ..notifications.record import record
from ..notifications.services import resolve_tag
from ..timeutil import app_zone, utcnow
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
from .models import ACTIVE_HOLD, Book, Copy, Hold, Loan
from .notices import hold_topic, loan_topic

MAX_COPIES_AT_ONCE = 100
MAX_RENEWALS = 2
NOTE_LIMIT = 500
# Each input as its form labels it (the desk, the catalogue, My holds): messages name them so.
LABELS = {
    "title": lazy_gettext("Title"),
    "author": lazy_gettext("Author"),
    "isbn": lazy_gettext("ISBN"),
    "copies": lazy_gettext("Copies"),
    "count": lazy_gettext("How many"),
    "copy_id": lazy_gettext("Copy number"),
    "user_email": lazy_gettext("Patron e-mail"),
    "note": lazy_gettext("Note to the patron"),
    "suspended_until": lazy_gettext("Away until"),
    "not_needed_after": lazy_gettext("Last day I still want it"),
}


def local_day(now: datetime) -> date:
    """Return the APP_TIMEZONE date of an instant: the day suspensions and due dates count in."""
    return now.astimezone(app_zone()).date()


def not_suspended(day: date | BindParameter[Any]):
    """Return the condition that a hold is not suspended on day (it may get a copy)."""
    return or_(Hold.suspended_until.is_(None), Hold.suspended_until <= day)


def _lock_book(book_id: int) -> None:
    """Serialise changes to one book's copies and holds for the rest of this transaction.

    A no-op UPDATE: a row lock on PostgreSQL; on SQLite the first write takes the database
    write lock, so every read after it sees the latest committed state.
    """
    touched = rows_changed(
        update(Book)
        .where(Book.id == book_id)
        .values(id=Book.id)
        .execution_options(synchronize_session=False)
    )
    if touched == 0:
        raise NotFound("book_id", gettext("No such book."))


def _pickup_days() -> int:
    return int(current_app.config["HOLD_PICKUP_DAYS"])


# fill_holds' statements, built once: it runs inside every check-in, and building a
# statement anew costs more Python than sending it.
_FREE_COPIES = (
    select(Copy)
    .where(Copy.book_id == bindparam("book_id"), Copy.status == "shelf")
    .order_by(Copy.id)
)
_NEXT_WAITING = (
    select(Hold)
    .where(
        Hold.book_id == bindparam("book_id"),
        Hold.status == "waiting",
        not_suspended(bindparam("today")),
    )
    .order_by(Hold.created_at, Hold.id)
    .limit(bindparam("copies"))
)
# Core statements on the tables, run on the session's connection (database.run): the ORM
# layer around a statement cost more Python than the statement, and fill_holds expires the
# session right after, so there are no loaded objects to keep in step.
_COPIES, _HOLDS = Copy.__table__.c, Hold.__table__.c
_CLAIM_COPY = (
    update(Copy.__table__)
    .where(_COPIES.id == bindparam("copy_id"), _COPIES.status == "shelf")
    .values(status="held")
)
_READY_HOLD = (
    update(Hold.__table__)
    .where(_HOLDS.id == bindparam("hold_id"), _HOLDS.status == "waiting")
    .values(
        status="ready",
        copy_id=bindparam("given_copy"),
        ready_at=bindparam("now"),
        pickup_deadline=bindparam("deadline"),
        suspended_until=None,
    )
)


def fill_holds(book_id: int, now: datetime) -> list[HoldBecameReady | HoldMovedUp]:
    """Give each free copy of the book to the next waiting hold, first come first served.

    Suspended holds keep their place but are passed over. Returns the holds that became
    ready and those behind them that moved up. The caller holds the book lock; the
    conditional updates are a second line of defence.
    """
    free = db.session.scalars(_FREE_COPIES, {"book_id": book_id}).all()
    if not free:
        return []
    waiting = db.session.scalars(
        _NEXT_WAITING, {"book_id": book_id, "today": local_day(now), "copies": len(free)}
    ).all()
    deadline = now + timedelta(days=_pickup_days())
    events: list[HoldBecameReady | HoldMovedUp] = []
    for copy, hold in zip(free, waiting, strict=False):
        claimed = run(_CLAIM_COPY, {"copy_id": copy.id}).rowcount
        readied = run(
            _READY_HOLD,
            {"hold_id": hold.id, "given_copy": copy.id, "now": now, "deadline": deadline},
        ).rowcount
        if not (claimed and readied):
            raise Raced(f"copy {copy.id} or hold {hold.id} changed under us")
        events.append(HoldBecameReady(hold.id, copy.id))
    # Before expire_all: moved_up reads the departed holds' places, which have not changed.
    events.extend(moved_up(book_id, list(waiting[: len(events)])))
    db.session.expire_all()
    return events


def moved_up(book_id: int, departed: list[Hold]) -> list[HoldMovedUp]:
    """Return HoldMovedUp for each waiting hold behind the first of departed (left the queue)."""
    if not departed:
        return []
    first = min(departed, key=lambda h: (h.created_at, h.id))
    behind = db.session.scalars(
        _WAITING_BEHIND,
        {"book_id": book_id, "created_at": first.created_at, "hold_id": first.id},
    )
    return [HoldMovedUp(hold_id) for hold_id in behind]


_WAITING_BEHIND = (
    select(Hold.id)
    .where(
        Hold.book_id == bindparam("book_id"),
        Hold.status == "waiting",
        or_(
            Hold.created_at > bindparam("created_at"),
            and_(Hold.created_at == bindparam("created_at"), Hold.id > bindparam("hold_id")),
        ),
    )
    .order_by(Hold.created_at, Hold.id)
)


def _commit(events: list) -> None:
    # An event can come twice (a hold behind a cancelled one and behind a readied one).
    record(list(dict.fromkeys(events)))
    db.session.commit()


# -- Catalogue -------------------------------------------------------------------------------


def search_books(query: str = "", limit: int = 200) -> list[dict]:
    """Return books matching query (title, author or ISBN) with live availability."""
    free = (
        select(func.count())
        .where(Copy.book_id == Book.id, Copy.status == "shelf")
        .correlate(Book)
        .scalar_subquery()
    )
    total = select(func.count()).where(Copy.book_id == Book.id).correlate(Book).scalar_subquery()
    waiting = (
        select(func.count())
        .where(Hold.book_id == Book.id, Hold.status == "waiting")
        .correlate(Book)
        .scalar_subquery()
    )
    stmt = select(Book, total, free, waiting).order_by(Book.title, Book.id).limit(limit)
    if query.strip():
        pattern = f"%{query.strip().lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(Book.title).like(pattern),
                func.lower(Book.author).like(pattern),
                Book.isbn.like(pattern.replace("-", "")),
            )
        )
    return [
        {
            "id": book.id,
            "title": book.title,
            "author": book.author,
            "isbn": book.isbn,
            "copies_total": total_n,
            "copies_available": free_n,
            "waiting_holds": waiting_n,
        }
        for book, total_n, free_n, waiting_n in db.session.execute(stmt)
    ]


def book_summary(book_id: int) -> dict:
    """Return one book with availability, or refuse (NotFound)."""
    book = get_or_refuse(Book, book_id)
    counts = dict(
        db.session.execute(
            select(Copy.status, func.count()).where(Copy.book_id == book_id).group_by(Copy.status)
        ).all()
    )
    waiting = db.session.scalar(
        select(func.count()).where(Hold.book_id == book_id, Hold.status == "waiting")
    )
    return {
        "id": book.id,
        "title": book.title,
        "author": book.author,
        "isbn": book.isbn,
        "copies_total": sum(counts.values()),
        "copies_available": counts.get("shelf", 0),
        "waiting_holds": waiting,
    }


_ISBN_CHARS = re.compile(r"[\s-]")


def normalize_isbn(value: object) -> str | None:
    """Return a valid ISBN-10/13 without separators, None for empty; raise on a bad one."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid("isbn", gettext("%(label)s must be text.", label=LABELS["isbn"]))
    isbn = _ISBN_CHARS.sub("", value).upper()
    if re.fullmatch(r"\d{9}[\dX]", isbn):
        total = sum((10 - i) * (10 if c == "X" else int(c)) for i, c in enumerate(isbn))
        valid = total % 11 == 0
    elif re.fullmatch(r"\d{13}", isbn):
        valid = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(isbn)) % 10 == 0
    else:
        valid = False
    if not valid:
        raise Invalid(
            "isbn", gettext("%(label)s is not a valid ISBN-10 or ISBN-13.", label=LABELS["isbn"])
        )
    return isbn


def _text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(field, gettext("%(label)s is required.", label=LABELS[field]))
    if len(value.strip()) > limit:
        raise Invalid(
            field,
            gettext(
                "%(label)s is longer than %(limit)d characters.", label=LABELS[field], limit=limit
            ),
        )
    return value.strip()


def add_book(title: object, author: object, isbn: object, copies: object) -> tuple[Book, list[int]]:
    """Add a book and its copies; every bad field is named at once."""
    refusals: dict[str, Refused] = {}
    checks = (
        ("title", lambda: _text(title, "title", 300)),
        ("author", lambda: _text(author, "author", 200)),
        ("isbn", lambda: normalize_isbn(isbn)),
        (
            "copies",
            lambda: whole_number(copies, "copies", 1, MAX_COPIES_AT_ONCE, label=LABELS["copies"]),
        ),
    )
    good: dict[str, Any] = {}
    for name, check in checks:
        try:
            good[name] = check()
        except Refused as refusal:
            refusals[name] = refusal
    if len(refusals) > 1:
        raise InvalidFields({name: each.message for name, each in refusals.items()})
    for only in refusals.values():
        raise only
    title, author, isbn = good["title"], good["author"], good["isbn"]
    count: int = good["copies"]
    if isbn and db.session.scalar(select(Book.id).where(Book.isbn == isbn)):
        raise Conflict(
            "isbn",
            gettext("A book with ISBN %(isbn)s is already in the catalogue.", isbn=isbn),
            "exists",
        )
    book = Book(title=title, author=author, isbn=isbn)
    db.session.add(book)
    new = [Copy(book=book) for _ in range(count)]
    db.session.add_all(new)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise Conflict("isbn", gettext("That ISBN is already in the catalogue."), "exists") from exc
    return book, [c.id for c in new]


@retry_on_conflict
def add_copies(book_id: int, count: object) -> list[int]:
    """Add copies to a book; waiting holds get them at once."""
    count = whole_number(count, "count", 1, MAX_COPIES_AT_ONCE, label=LABELS["count"])
    _lock_book(book_id)
    new = [Copy(book_id=book_id) for _ in range(count)]
    db.session.add_all(new)
    db.session.flush()
    ids = [c.id for c in new]
    _commit(fill_holds(book_id, utcnow()))
    return ids


# -- Holds -----------------------------------------------------------------------------------


def queue_position(hold: Hold) -> int | None:
    """Return a waiting hold's place in its book's queue (1 = next), else None."""
    if hold.status != "waiting":
        return None
    ahead = db.session.execute(
        select(func.count()).where(
            Hold.book_id == hold.book_id,
            Hold.status == "waiting",
            or_(
                Hold.created_at < hold.created_at,
                and_(Hold.created_at == hold.created_at, Hold.id < hold.id),
            ),
        )
    ).scalar_one()
    return ahead + 1


@retry_on_conflict
def place_hold(user_id: int, book_id: int) -> Hold:
    """Join a book's queue; a free copy, if any, is set aside at once."""
    _lock_book(book_id)
    mine = db.session.scalar(
        select(Hold.id).where(
            Hold.book_id == book_id, Hold.user_id == user_id, Hold.status.in_(ACTIVE_HOLD)
        )
    )
    if mine:
        raise Conflict(
            "book_id", gettext("You already have a hold on this book."), "already_holding"
        )
    if _borrowing(user_id, book_id):
        raise Conflict(
            "book_id", gettext("You are borrowing this book already."), "already_borrowing"
        )
    hold = Hold(book_id=book_id, user_id=user_id, status="waiting", created_at=utcnow())
    db.session.add(hold)
    db.session.flush()
    _commit(fill_holds(book_id, utcnow()))
    return db.session.get_one(Hold, hold.id)


def _borrowing(user_id: int, book_id: int) -> bool:
    return bool(
        db.session.scalar(
            select(Loan.id)
            .join(Copy, Copy.id == Loan.copy_id)
            .where(Loan.user_id == user_id, Copy.book_id == book_id, Loan.returned_at.is_(None))
        )
    )


def get_hold(actor: User, hold_id: int) -> Hold:
    """Return a hold its owner or a librarian may see; NotFound for anyone else."""
    hold = get_or_refuse(
        Hold, hold_id, visible=lambda h: h.user_id == actor.id or actor.has_role("librarian")
    )
    return hold


def _note(note: object) -> str | None:
    if note is None or note == "":
        return None
    if not isinstance(note, str):
        raise Invalid("note", gettext("%(label)s must be text.", label=LABELS["note"]))
    if len(note.strip()) > NOTE_LIMIT:
        raise Invalid(
            "note",
            gettext(
                "%(label)s is longer than %(limit)d characters.",
                label=LABELS["note"],
                limit=NOTE_LIMIT,
            ),
        )
    return note.strip() or None


@retry_on_conflict
def cancel_hold(actor: User, hold_id: int, note: object = None) -> Hold:
    """Cancel a hold (owner or librarian); a set-aside copy goes to the next in line.

    When the library cancels a patron's hold, the patron is told (`hold_cancelled`), with the
    librarian's note.
    """
    note = _note(note)
    if note is not None and not actor.has_role("librarian"):
        raise Forbidden("note", gettext("Only the library adds a note when it cancels a hold."))
    hold = get_hold(actor, hold_id)
    _lock_book(hold.book_id)
    hold = db.session.get_one(Hold, hold_id, populate_existing=True)
    if hold.status not in ACTIVE_HOLD:
        raise Conflict(
            "hold_id",
            gettext("This hold is already %(status)s.", status=hold_status(hold.status)),
            "not_active",
        )
    now = utcnow()
    by_library = hold.user_id != actor.id
    events: list[object] = []
    if by_library:
        # Staff cancelling a patron's hold is audited; patrons cancelling their own is not.
        audit.record("hold.cancel", f"hold {hold.id} (book {hold.book_id}, user {hold.user_id})")
        hold.note = note
    was_waiting = hold.status == "waiting"
    _close(hold, "cancelled", now)
    # Settled: its earlier notices are read everywhere; the cancellation notice is newer.
    resolve_tag(hold.user_id, hold_topic(hold.id), now)
    if by_library:
        events.append(HoldCancelledByLibrary(hold.id))
    if was_waiting:
        events.extend(moved_up(hold.book_id, [hold]))
    events.extend(fill_holds(hold.book_id, now))
    _commit(events)
    return hold


@retry_on_conflict
def update_hold(actor: User, hold_id: int, changes: object) -> Hold:
    """Suspend or resume a waiting hold, or set its not-needed-after date (owner or librarian).

    changes holds `suspended_until` and/or `not_needed_after` (YYYY-MM-DD, or None to clear).
    A suspended hold keeps its place; resuming it may hand it a free copy at once.
    """
    if not isinstance(changes, dict):
        raise Invalid(None, gettext("Send a JSON object."))
    unknown = sorted(set(changes) - {"suspended_until", "not_needed_after"})
    if unknown:
        raise Invalid(unknown[0], gettext("%(field)s cannot be changed.", field=unknown[0]))
    if not changes:
        raise Invalid(
            "suspended_until",
            gettext(
                "Send %(suspend)s or %(last)s.",
                suspend=LABELS["suspended_until"],
                last=LABELS["not_needed_after"],
            ),
        )
    now = utcnow()
    today = local_day(now)
    # Both dates are checked before refusing, so one answer names every bad one.
    refusals: dict[str, Refused] = {}
    parsed: dict[str, date | None] = {}
    for name, value in changes.items():
        try:
            parsed[name] = _date(value, name)
        except Refused as bad_date:
            refusals[name] = bad_date
    suspend, last_day = parsed.get("suspended_until"), parsed.get("not_needed_after")
    if suspend is not None and suspend <= today:
        refusals["suspended_until"] = Invalid(
            "suspended_until",
            gettext("%(label)s must be a day after today.", label=LABELS["suspended_until"]),
        )
    if last_day is not None and last_day < today:
        refusals["not_needed_after"] = Invalid(
            "not_needed_after",
            gettext("%(label)s cannot be in the past.", label=LABELS["not_needed_after"]),
        )
    if len(refusals) > 1:
        raise InvalidFields({name: each.message for name, each in refusals.items()})
    for only in refusals.values():
        raise only
    hold = get_hold(actor, hold_id)
    _lock_book(hold.book_id)
    hold = db.session.get_one(Hold, hold_id, populate_existing=True)
    if hold.status != "waiting":
        raise Conflict(
            "hold_id",
            gettext(
                "Only a waiting hold can change; this one is %(status)s.",
                status=hold_status(hold.status),
            ),
            "not_waiting",
        )
    until = parsed.get("suspended_until", hold.suspended_until)
    last = parsed.get("not_needed_after", hold.not_needed_after)
    if until is not None and last is not None and last < until:
        field = "not_needed_after" if "not_needed_after" in parsed else "suspended_until"
        raise Invalid(field, gettext("The hold would end before its suspension does."))
    if hold.user_id != actor.id:
        audit.record("hold.update", f"hold {hold.id} (suspended until {until}, last day {last})")
    hold.suspended_until, hold.not_needed_after = until, last
    db.session.flush()
    _commit(fill_holds(hold.book_id, now))
    return db.session.get_one(Hold, hold_id)


def _date(value: object, field: str) -> date | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Invalid(field, _not_a_date(field))
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(field, _not_a_date(field)) from None


def _not_a_date(field: str) -> str:
    return gettext("%(label)s must be a date (YYYY-MM-DD) or empty.", label=LABELS[field])


def hold_status(status: str) -> str:
    """Name a hold's status in the current language (as the pages show it)."""
    names = {
        "waiting": gettext("waiting"),
        "ready": gettext("ready"),
        "fulfilled": gettext("fulfilled"),
        "cancelled": gettext("cancelled"),
        "expired": gettext("expired"),
    }
    return names.get(status, status)


def _close(hold: Hold, status: str, now: datetime) -> None:
    """End a hold; its set-aside copy, if any, goes back to the shelf."""
    if hold.status == "ready" and hold.copy_id is not None:
        db.session.execute(
            update(Copy)
            .where(Copy.id == hold.copy_id, Copy.status == "held")
            .values(status="shelf")
        )
    hold.status = status
    hold.closed_at = now
    db.session.flush()


def holds_for(user_id: int | None) -> list[tuple[Hold, User]]:
    """Return active and recent holds, the user's own or (None) everyone's."""
    stmt = (
        select(Hold, User)
        .join(User, User.id == Hold.user_id)
        .order_by(Hold.status != "ready", Hold.status != "waiting", Hold.created_at.desc())
    )
    if user_id is not None:
        stmt = stmt.where(Hold.user_id == user_id)
    return list(db.session.execute(stmt.limit(500)).all())


# -- The desk --------------------------------------------------------------------------------


def _copy_key(copy_id: object) -> int:
    key = as_id(copy_id)
    if key is None:
        raise Invalid(
            "copy_id", gettext("%(label)s: enter the number on the copy.", label=LABELS["copy_id"])
        )
    return key


def _copy(copy_id: object) -> Copy:
    key = _copy_key(copy_id)
    return get_or_refuse(Copy, key, message=gettext("There is no copy %(id)s.", id=key))


def _due_date(now: datetime) -> date:
    return (now + timedelta(days=int(current_app.config["LOAN_DAYS"]))).date()


@retry_on_conflict
def check_out(copy_id: object, user_email: object) -> Loan:
    """Lend a copy to a patron: a copy on the shelf, or the one set aside for their hold."""
    # Both fields are checked before refusing, so the desk sees every mistake at once.
    refusals: dict[str, Refused] = {}
    copy: Copy | None = None
    patron: User | None = None
    try:
        copy = _copy(copy_id)
    except Refused as bad_copy:
        refusals["copy_id"] = bad_copy
    if not isinstance(user_email, str) or not user_email.strip():
        refusals["user_email"] = Invalid(
            "user_email", gettext("%(label)s is required.", label=LABELS["user_email"])
        )
    else:
        patron = find_user(user_email)
        if patron is None:
            refusals["user_email"] = NotFound(
                "user_email", gettext("No patron with e-mail %(email)s.", email=user_email)
            )
    if len(refusals) > 1:
        raise InvalidFields({name: each.message for name, each in refusals.items()})
    for only in refusals.values():
        raise only
    assert copy is not None and patron is not None
    _lock_book(copy.book_id)
    copy = db.session.get_one(Copy, copy.id, populate_existing=True)
    now = utcnow()
    if copy.status == "loaned":
        raise Conflict("copy_id", gettext("Copy %(id)s is already on loan.", id=copy.id), "on_loan")
    if _borrowing(patron.id, copy.book_id):
        raise Conflict(
            "user_email",
            gettext("%(email)s already borrows this book.", email=patron.email),
            "already_borrowing",
        )
    own = db.session.scalar(
        select(Hold).where(
            Hold.book_id == copy.book_id, Hold.user_id == patron.id, Hold.status.in_(ACTIVE_HOLD)
        )
    )
    if copy.status == "held":
        if own is None or own.copy_id != copy.id:
            raise Conflict(
                "copy_id",
                gettext("Copy %(id)s is set aside for another patron.", id=copy.id),
                "held",
            )
    else:
        first = db.session.scalar(
            select(Hold)
            .where(Hold.book_id == copy.book_id, Hold.status == "waiting")
            .order_by(Hold.created_at, Hold.id)
        )
        if first is not None and first.user_id != patron.id:
            raise Conflict(
                "copy_id",
                gettext("Patrons are waiting for this book: the copy goes to the first of them."),
                "queue",
            )
    audit.record("loan.checkout", f"copy {copy.id} to {patron.email}")
    return _lend(copy, patron.id, own, now)


def _lend(copy: Copy, user_id: int, hold: Hold | None, now: datetime) -> Loan:
    """Create the loan, mark the copy loaned, fulfil the patron's hold; commit."""
    if hold is not None:
        hold.status = "fulfilled"
        hold.closed_at = now
        resolve_tag(hold.user_id, hold_topic(hold.id), now)
    copy.status = "loaned"
    loan = Loan(copy_id=copy.id, user_id=user_id, checked_out_at=now, due_date=_due_date(now))
    db.session.add(loan)
    db.session.commit()
    return loan


class CheckedIn(NamedTuple):
    """Where a returned copy went: to a hold (status "held", hold_id) or to the shelf."""

    copy_id: int
    copy_status: str
    hold_id: int | None


# The check-in's statements, built once on the tables (it is on the latency path,
# bench/latency.py). The copy's book locked and found in one statement: on PostgreSQL each
# statement is a round trip.
_BOOKS, _LOANS = Book.__table__.c, Loan.__table__.c
_LOCK_BOOK_OF_COPY = (
    update(Book.__table__)
    .where(
        _BOOKS.id
        == select(_COPIES.book_id).where(_COPIES.id == bindparam("copy_id")).scalar_subquery()
    )
    .values(id=_BOOKS.id)
    .returning(_BOOKS.id)
)
_CLOSE_LOAN = (
    update(Loan.__table__)
    .where(_LOANS.copy_id == bindparam("returned_copy"), _LOANS.returned_at.is_(None))
    .values(returned_at=bindparam("now"))
    .returning(_LOANS.id, _LOANS.user_id)
)
_SHELVE_COPY = (
    update(Copy.__table__).where(_COPIES.id == bindparam("copy_id")).values(status="shelf")
)


@retry_on_conflict
def check_in(copy_id: object) -> CheckedIn:
    """Take a returned copy back: to the first waiting hold (now ready) or to the shelf."""
    key = _copy_key(copy_id)
    book_id = run(_LOCK_BOOK_OF_COPY, {"copy_id": key}).scalar()
    if book_id is None:
        raise NotFound("copy_id", gettext("There is no copy %(id)s.", id=key))
    now = utcnow()
    loan = run(_CLOSE_LOAN, {"returned_copy": key, "now": now}).first()
    if loan is None:
        raise Conflict("copy_id", gettext("Copy %(id)s is not on loan.", id=key), "not_on_loan")
    audit.record("loan.checkin", f"copy {key} (loan {loan.id})")
    resolve_tag(loan.user_id, loan_topic(loan.id), now)
    run(_SHELVE_COPY, {"copy_id": key})
    events = fill_holds(book_id, now)
    hold_id = next(
        (e.hold_id for e in events if isinstance(e, HoldBecameReady) and e.copy_id == key), None
    )
    _commit(events)
    # Under the book lock the copy went to this hold or stayed on the shelf: nothing to reread.
    return CheckedIn(key, "shelf" if hold_id is None else "held", hold_id)


@retry_on_conflict
def pick_up(hold_id: int) -> Loan:
    """The patron collects a ready hold: it becomes a loan."""
    hold = get_or_refuse(Hold, hold_id)
    _lock_book(hold.book_id)
    hold = db.session.get_one(Hold, hold_id, populate_existing=True)
    if hold.status != "ready":
        raise Conflict(
            "hold_id",
            gettext("This hold is %(status)s, not ready.", status=hold_status(hold.status)),
            "not_ready",
        )
    copy = db.session.get_one(Copy, hold.copy_id, populate_existing=True)
    audit.record("loan.checkout", f"copy {copy.id} for hold {hold.id} (user {hold.user_id})")
    return _lend(copy, hold.user_id, hold, utcnow())


def loans_for(user_id: int | None, active_only: bool = True) -> list[tuple[Loan, Book, User]]:
    """Return loans with their book and borrower, oldest due first."""
    stmt = (
        select(Loan, Book, User)
        .join(Copy, Copy.id == Loan.copy_id)
        .join(Book, Book.id == Copy.book_id)
        .join(User, User.id == Loan.user_id)
        .order_by(Loan.due_date, Loan.id)
    )
    if user_id is not None:
        stmt = stmt.where(Loan.user_id == user_id)
    if active_only:
        stmt = stmt.where(Loan.returned_at.is_(None))
    return list(db.session.execute(stmt.limit(500)).all())


# -- What time changes (scheduled jobs call these) -------------------------------------------


@retry_on_conflict
def fill_book(book_id: int) -> int:
    """Give a book's free copies to its waiting holds; return how many became ready."""
    _lock_book(book_id)
    events = fill_holds(book_id, utcnow())
    _commit(events)
    return sum(isinstance(event, HoldBecameReady) for event in events)


@retry_on_conflict
def expire_hold(hold_id: int) -> bool:
    """End a ready hold past its pickup deadline and pass its copy on; False if not due."""
    hold = db.session.get(Hold, hold_id)
    if hold is None:
        return False
    _lock_book(hold.book_id)
    hold = db.session.get_one(Hold, hold_id, populate_existing=True)
    now = utcnow()
    # A ready hold always has a deadline (a check constraint); "or now" keeps mypy sure too.
    if hold.status != "ready" or (hold.pickup_deadline or now) > now:
        db.session.rollback()
        return False
    _close(hold, "expired", now)
    resolve_tag(hold.user_id, hold_topic(hold.id), now)
    _commit([HoldExpired(hold.id), *fill_holds(hold.book_id, now)])
    return True


def remind(hold_ids: list[int]) -> int:
    """Record `hold_expiring` for these holds (once each: the dedupe key); return how many."""
    created = record([HoldExpiringSoon(hold_id) for hold_id in hold_ids])
    db.session.commit()
    return len(created)


@retry_on_conflict
def resume_hold(hold_id: int, day: date) -> bool:
    """Resume a hold whose suspension ends by day (`hold_resumed`); False if not due."""
    hold = db.session.get(Hold, hold_id)
    if hold is None:
        return False
    _lock_book(hold.book_id)
    hold = db.session.get_one(Hold, hold_id, populate_existing=True)
    until = hold.suspended_until
    if hold.status != "waiting" or until is None or until > day:
        db.session.rollback()
        return False
    hold.suspended_until = None
    db.session.flush()
    _commit([HoldResumed(hold.id, until), *fill_holds(hold.book_id, utcnow())])
    return True


@retry_on_conflict
def expire_unneeded(hold_id: int, day: date) -> bool:
    """End a waiting hold whose not-needed-after date is before day; the queue moves up."""
    hold = db.session.get(Hold, hold_id)
    if hold is None:
        return False
    _lock_book(hold.book_id)
    hold = db.session.get_one(Hold, hold_id, populate_existing=True)
    last = hold.not_needed_after
    if hold.status != "waiting" or last is None or last >= day:
        db.session.rollback()
        return False
    now = utcnow()
    _close(hold, "expired", now)
    # The patron chose the date, so no notice; what they were told about it is settled.
    resolve_tag(hold.user_id, hold_topic(hold.id), now)
    _commit([*moved_up(hold.book_id, [hold]), *fill_holds(hold.book_id, now)])
    return True


def remind_loans(loan_ids: list[int], day: date) -> int:
    """Record `loan_due_soon` / `loan_overdue` for these loans on day; return how many new."""
    created = record([LoansDue(day, tuple(loan_ids))])
    db.session.commit()
    return len(created)


# -- Renewals --------------------------------------------------------------------------------


def get_loan(actor: User, loan_id: int) -> Loan:
    """Return a loan its borrower or a librarian may see; NotFound for anyone else."""
    return get_or_refuse(
        Loan, loan_id, visible=lambda loan: loan.user_id == actor.id or actor.has_role("librarian")
    )


@retry_on_conflict
def renew_loan(actor: User, loan_id: int) -> Loan:
    """Renew a loan (borrower or librarian): the new due date counts from the old one.

    Refused (409) when it is returned, when someone waits for the book (`queue`), or after
    MAX_RENEWALS renewals (`renewal_limit`).
    """
    loan = get_loan(actor, loan_id)
    book_id = loan.copy.book_id
    _lock_book(book_id)
    loan = db.session.get_one(Loan, loan_id, populate_existing=True)
    if loan.returned_at is not None:
        raise Conflict("loan_id", gettext("This loan has been returned."), "returned")
    if loan.renewals >= MAX_RENEWALS:
        raise Conflict(
            "loan_id",
            gettext("This loan has been renewed %(n)d times already.", n=MAX_RENEWALS),
            "renewal_limit",
        )
    waiting = db.session.scalar(
        select(func.count()).where(
            Hold.book_id == book_id,
            Hold.status == "waiting",
            not_suspended(local_day(utcnow())),
        )
    )
    if waiting:
        raise Conflict(
            "loan_id",
            gettext("Someone is waiting for this book, so it cannot be renewed."),
            "queue",
        )
    if loan.user_id != actor.id:
        audit.record("loan.renew", f"loan {loan.id} (copy {loan.copy_id}, user {loan.user_id})")
    loan.due_date = loan.due_date + timedelta(days=int(current_app.config["LOAN_DAYS"]))
    loan.renewals += 1
    db.session.flush()
    _commit([LoanRenewed(loan.id)])
    return loan

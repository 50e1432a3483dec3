"""The library's pages: catalogue, book, my holds, my loans, and the librarian's desk."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required
from sqlalchemy import select

from ..auth import role_required
from ..errors import (
    Invalid,
    InvalidFields,
    Refused,
    as_id,
    http_status,
    refused_to_page,
    safe_back,
)
from ..extensions import db
from ..timeutil import local_time, utcnow
from . import services
from .models import ACTIVE_HOLD, Book, Hold

bp = Blueprint("library", __name__, url_prefix="/library")


@bp.context_processor
def _calendar() -> dict:
    """Give the library's pages today's local date and the renewal rules."""
    today = services.local_day(utcnow())
    return {
        "today": today,
        "tomorrow": today + timedelta(days=1),
        "max_renewals": services.MAX_RENEWALS,
        "loan_days": current_app.config["LOAN_DAYS"],
    }


def _attempt(action: Callable[[], str], back: str):
    """Run a desk action; flash its result or the reason it was refused, then go back."""
    try:
        flash(action(), "success")
    except Refused as error:
        return refused_to_page(error, back)
    return redirect(back)


@bp.get("/")
@login_required
def catalogue():
    """The catalogue with search and availability."""
    query = request.args.get("q", "")[:200]
    return render_template(
        "library/catalogue.html", books=services.search_books(query), query=query
    )


@bp.get("/books/<int:book_id>")
@login_required
def book(book_id: int):
    """One book: availability, my place in its queue, Reserve."""
    summary = services.book_summary(book_id)
    mine = db.session.scalar(
        select(Hold).where(
            Hold.book_id == book_id, Hold.user_id == current_user.id, Hold.status.in_(ACTIVE_HOLD)
        )
    )
    borrowing = [(loan, b) for loan, b, _ in services.loans_for(current_user.id) if b.id == book_id]
    return render_template(
        "library/book.html",
        book=summary,
        hold=mine,
        position=services.queue_position(mine) if mine else None,
        loan=borrowing[0][0] if borrowing else None,
    )


@bp.post("/books/<int:book_id>/reserve")
@login_required
def reserve(book_id: int):
    """Join the book's queue."""
    try:
        hold = services.place_hold(current_user.id, book_id)
    except Refused as error:
        return refused_to_page(error, url_for(".book", book_id=book_id))
    if hold.status == "ready":
        flash(gettext("A copy was on the shelf: it is set aside for you now."), "success")
    else:
        position = services.queue_position(hold)
        flash(gettext("Reserved. You are number %(n)s in the queue.", n=position), "success")
    return redirect(url_for(".hold", hold_id=hold.id))


@bp.get("/holds")
@login_required
def my_holds():
    """My holds: status, position, pickup deadline, cancel."""
    rows = [
        (hold, services.queue_position(hold)) for hold, _ in services.holds_for(current_user.id)
    ]
    return render_template("library/holds.html", rows=rows)


@bp.get("/holds/<int:hold_id>")
@login_required
def hold(hold_id: int):
    """One hold: where a "your book is ready" notification opens."""
    found = services.get_hold(current_user, hold_id)
    return render_template("library/hold.html", hold=found, position=services.queue_position(found))


@bp.post("/holds/<int:hold_id>/cancel")
@login_required
def cancel(hold_id: int):
    """Cancel a hold (its owner or a librarian)."""
    back = safe_back(request.form.get("back"), url_for(".my_holds"))

    def action() -> str:
        hold = services.cancel_hold(current_user, hold_id, request.form.get("note"))
        if hold.user_id != current_user.id:
            if hold.note:
                return gettext(
                    "Hold %(id)s on %(title)s cancelled; the patron has been told with your note.",
                    id=hold.id,
                    title=hold.book.title,
                )
            return gettext(
                "Hold %(id)s on %(title)s cancelled; the patron has been told.",
                id=hold.id,
                title=hold.book.title,
            )
        return gettext("Hold on %(title)s cancelled.", title=hold.book.title)

    return _attempt(action, back)


def _change_hold(hold_id: int, changes: dict, done: Callable[[Hold], str]):
    """Apply a hold change from a form; say what happened; back to where it came from."""
    back = safe_back(request.form.get("back"), url_for(".hold", hold_id=hold_id))

    def action() -> str:
        return done(services.update_hold(current_user, hold_id, changes))

    return _attempt(action, back)


@bp.post("/holds/<int:hold_id>/suspend")
@login_required
def suspend(hold_id: int):
    """Suspend a waiting hold until a date: it keeps its place and is skipped meanwhile."""
    return _change_hold(
        hold_id,
        {"suspended_until": request.form.get("suspended_until", "")},
        lambda hold: gettext(
            "Suspended until %(day)s: you keep your place, and "
            "copies pass you by until then. It resumes by itself.",
            day=local_time(hold.suspended_until),
        ),
    )


@bp.post("/holds/<int:hold_id>/resume")
@login_required
def resume(hold_id: int):
    """Resume a suspended hold now."""
    return _change_hold(
        hold_id,
        {"suspended_until": None},
        lambda hold: (
            "Resumed: the next free copy can be yours."
            if hold.status == "waiting"
            else "Resumed, and a copy was free: it is set aside for you now."
        ),
    )


@bp.post("/holds/<int:hold_id>/not-needed")
@login_required
def not_needed(hold_id: int):
    """Set (or clear) the last day the patron still wants the book."""
    return _change_hold(
        hold_id,
        {"not_needed_after": request.form.get("not_needed_after", "")},
        lambda hold: (
            gettext(
                "Not needed after %(day)s: the hold ends then if no copy has come.",
                day=local_time(hold.not_needed_after),
            )
            if hold.not_needed_after
            else gettext("The hold stays until you cancel it.")
        ),
    )


@bp.get("/loans")
@login_required
def my_loans():
    """My loans and their due dates."""
    return render_template("library/loans.html", rows=services.loans_for(current_user.id))


@bp.post("/loans/<int:loan_id>/renew")
@login_required
def renew(loan_id: int):
    """Renew a loan (its borrower or a librarian), or say why not."""
    back = safe_back(request.form.get("back"), url_for(".my_loans"))

    def action() -> str:
        loan = services.renew_loan(current_user, loan_id)
        return gettext(
            "Renewed %(title)s: now due %(due)s (renewal %(n)s of %(max)s).",
            title=loan.copy.book.title,
            due=local_time(loan.due_date),
            n=loan.renewals,
            max=services.MAX_RENEWALS,
        )

    return _attempt(action, back)


# -- The desk (librarians) -------------------------------------------------------------------


@bp.get("/desk")
@role_required("librarian")
def desk():
    """Holds to put aside and awaiting pickup, the queue, check out and in, add books."""
    return _desk_page()


def _desk_page(
    checkout: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    *,
    new_book: dict[str, str] | None = None,
    book_errors: dict[str, str] | None = None,
):
    """Render the desk; a refused form shows what was typed and each field's message."""
    rows = services.holds_for(None)
    ready = [(h, u) for h, u in rows if h.status == "ready"]
    waiting = [(h, u, services.queue_position(h)) for h, u in rows if h.status == "waiting"]
    books = db.session.scalars(select(Book).order_by(Book.title)).all()
    return render_template(
        "library/desk.html",
        ready=ready,
        waiting=waiting,
        loans=services.loans_for(None),
        books=books,
        checkout=checkout or {},
        checkout_errors=errors or {},
        new_book=new_book or {},
        book_errors=book_errors or {},
    )


@bp.post("/desk/checkout")
@role_required("librarian")
def desk_check_out():
    """Lend a copy to a patron; several bad fields re-render the form with each message."""
    typed = {"copy_id": request.form.get("copy_id", ""), "email": request.form.get("email", "")}
    try:
        loan = services.check_out(typed["copy_id"], typed["email"])
    except InvalidFields as error:
        return _desk_page(typed, error.errors), http_status(error)
    except Refused as error:
        return refused_to_page(error, url_for(".desk"))
    flash(
        gettext("Copy %(id)s lent until %(due)s.", id=loan.copy_id, due=local_time(loan.due_date)),
        "success",
    )
    return redirect(url_for(".desk"))


@bp.post("/desk/checkin")
@role_required("librarian")
def desk_check_in():
    """Take a returned copy back."""

    def action() -> str:
        returned = services.check_in(request.form.get("copy_id", ""))
        if returned.hold_id is not None:
            return gettext(
                "Copy %(id)s is set aside for hold %(hold)s: put it on the hold shelf. "
                "The patron has been told.",
                id=returned.copy_id,
                hold=returned.hold_id,
            )
        return gettext("Copy %(id)s goes back on the shelf.", id=returned.copy_id)

    return _attempt(action, url_for(".desk"))


@bp.post("/desk/holds/<int:hold_id>/pickup")
@role_required("librarian")
def desk_pick_up(hold_id: int):
    """Mark a ready hold collected."""

    def action() -> str:
        loan = services.pick_up(hold_id)
        return gettext(
            "Hold %(hold)s collected: copy %(id)s lent until %(due)s.",
            hold=hold_id,
            id=loan.copy_id,
            due=local_time(loan.due_date),
        )

    return _attempt(action, url_for(".desk"))


@bp.post("/desk/books")
@role_required("librarian")
def desk_add_book():
    """Add a book with copies; several bad fields re-render the form with each message."""
    typed = {name: request.form.get(name, "") for name in ("title", "author", "isbn", "copies")}
    try:
        book, copy_ids = services.add_book(
            typed["title"], typed["author"], typed["isbn"], typed["copies"] or "1"
        )
    except InvalidFields as error:
        return _desk_page(new_book=typed, book_errors=error.errors), http_status(error)
    except Refused as error:
        return refused_to_page(error, url_for(".desk"))
    flash(
        gettext(
            "Added %(title)s with copies %(ids)s.",
            title=book.title,
            ids=", ".join(map(str, copy_ids)),
        ),
        "success",
    )
    return redirect(url_for(".desk"))


@bp.post("/desk/copies")
@role_required("librarian")
def desk_add_copies():
    """Add copies to a book; waiting holds get them at once."""

    def action() -> str:
        book_id = as_id(request.form.get("book_id", ""))
        if book_id is None:
            raise Invalid("book_id", gettext("Choose a book."))
        ids = services.add_copies(book_id, request.form.get("count", "1"))
        return gettext("Added copies %(ids)s.", ids=", ".join(map(str, ids)))

    return _attempt(action, url_for(".desk"))

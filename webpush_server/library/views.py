"""The library's pages: catalogue, book, my holds, my loans, and the librarian's desk."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..auth import role_required
from ..errors import Invalid, Refused, as_id, refused_to_page, safe_back
from ..extensions import db
from . import services
from .models import ACTIVE_HOLD, Book, Hold

bp = Blueprint("library", __name__, url_prefix="/library")


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
        flash("A copy was on the shelf: it is set aside for you now.", "success")
    else:
        flash(f"Reserved. You are number {services.queue_position(hold)} in the queue.", "success")
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
        services.cancel_hold(current_user, hold_id)
        return "Hold cancelled."

    return _attempt(action, back)


@bp.get("/loans")
@login_required
def my_loans():
    """My loans and their due dates."""
    return render_template("library/loans.html", rows=services.loans_for(current_user.id))


# -- The desk (librarians) -------------------------------------------------------------------


@bp.get("/desk")
@role_required("librarian")
def desk():
    """Holds to put aside and awaiting pickup, the queue, check out and in, add books."""
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
    )


@bp.post("/desk/checkout")
@role_required("librarian")
def desk_check_out():
    """Lend a copy to a patron."""

    def action() -> str:
        loan = services.check_out(request.form.get("copy_id", ""), request.form.get("email", ""))
        return f"Copy {loan.copy_id} lent until {loan.due_date.isoformat()}."

    return _attempt(action, url_for(".desk"))


@bp.post("/desk/checkin")
@role_required("librarian")
def desk_check_in():
    """Take a returned copy back."""

    def action() -> str:
        copy, hold = services.check_in(request.form.get("copy_id", ""))
        if hold is not None:
            return (
                f"Copy {copy.id} is set aside for hold {hold.id}: put it on the hold shelf. "
                "The patron has been told."
            )
        return f"Copy {copy.id} goes back on the shelf."

    return _attempt(action, url_for(".desk"))


@bp.post("/desk/holds/<int:hold_id>/pickup")
@role_required("librarian")
def desk_pick_up(hold_id: int):
    """Mark a ready hold collected."""

    def action() -> str:
        loan = services.pick_up(hold_id)
        return f"Hold {hold_id} collected: copy {loan.copy_id} lent until {loan.due_date}."

    return _attempt(action, url_for(".desk"))


@bp.post("/desk/books")
@role_required("librarian")
def desk_add_book():
    """Add a book with copies."""

    def action() -> str:
        book, copy_ids = services.add_book(
            request.form.get("title"),
            request.form.get("author"),
            request.form.get("isbn"),
            request.form.get("copies", "1"),
        )
        return f"Added {book.title} with copies {', '.join(map(str, copy_ids))}."

    return _attempt(action, url_for(".desk"))


@bp.post("/desk/copies")
@role_required("librarian")
def desk_add_copies():
    """Add copies to a book; waiting holds get them at once."""

    def action() -> str:
        book_id = as_id(request.form.get("book_id", ""))
        if book_id is None:
            raise Invalid("book_id", "Choose a book.")
        ids = services.add_copies(book_id, request.form.get("count", "1"))
        return f"Added copies {', '.join(map(str, ids))}."

    return _attempt(action, url_for(".desk"))

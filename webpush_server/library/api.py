"""The library's JSON API (docs/api.md, "Library")."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, jsonify, request
from flask_babel import gettext
from flask_login import current_user, login_required

from ..apidoc import documented
from ..auth import role_required
from ..auth.models import User
from ..errors import Forbidden, Invalid
from ..extensions import db
from ..timeutil import isoformat
from . import services
from .models import Hold
from .schemas import (
    BookCreated,
    BookIn,
    BookQuery,
    Books,
    CheckedIn,
    CopiesCreated,
    CopiesIn,
    HoldCancel,
    HoldChanges,
    HoldOut,
    HoldPlaced,
    Holds,
    HoldsQuery,
    LoanCreated,
    LoanIn,
    LoanRenewed,
    PickedUp,
)

bp = Blueprint("library_api", __name__, url_prefix="/api/library")


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Invalid(None, gettext("Send a JSON object."))
    return data


def hold_json(hold: Hold, email: str) -> dict:
    """Return the API shape of a hold."""
    return {
        "id": hold.id,
        "book_id": hold.book_id,
        "user_email": email,
        "status": hold.status,
        "position": services.queue_position(hold),
        "pickup_deadline": isoformat(hold.pickup_deadline),
        "suspended_until": _day(hold.suspended_until),
        "not_needed_after": _day(hold.not_needed_after),
    }


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


@bp.get("/books")
@documented("Search the catalogue", query=BookQuery, responses={200: Books}, tags=("library",))
@login_required
def books():
    """Search the catalogue with live availability."""
    return jsonify(books=services.search_books(request.args.get("q", "")[:200]))


@bp.post("/books")
@documented(
    "Add a book with copies (librarians)",
    request=BookIn,
    responses={201: BookCreated},
    tags=("library",),
    errors=(403,),
)
@role_required("librarian")
def add_book():
    """Add a book with copies."""
    data = _body()
    book, copy_ids = services.add_book(
        data.get("title"), data.get("author"), data.get("isbn"), data.get("copies")
    )
    return jsonify(id=book.id, copy_ids=copy_ids), 201


@bp.post("/books/<int:book_id>/copies")
@documented(
    "Add copies (librarians)",
    request=CopiesIn,
    responses={201: CopiesCreated},
    tags=("library",),
    errors=(403, 404),
)
@role_required("librarian")
def add_copies(book_id: int):
    """Add copies to a book."""
    return jsonify(copy_ids=services.add_copies(book_id, _body().get("count"))), 201


@bp.post("/books/<int:book_id>/holds")
@documented("Reserve a book", responses={201: HoldPlaced}, tags=("library",), errors=(404, 409))
@login_required
def place_hold(book_id: int):
    """Reserve a book: join its queue."""
    hold = services.place_hold(current_user.id, book_id)
    return jsonify(id=hold.id, status=hold.status, position=services.queue_position(hold)), 201


@bp.get("/holds")
@documented(
    "My holds (librarians: all with ?all=1)",
    query=HoldsQuery,
    responses={200: Holds},
    tags=("library",),
    errors=(403,),
)
@login_required
def holds():
    """The caller's holds; everyone's for a librarian with ?all=1."""
    everyone = request.args.get("all") in ("1", "true")
    if everyone and not current_user.has_role("librarian"):
        raise Forbidden("all", gettext("Only librarians see every hold."))
    rows = services.holds_for(None if everyone else current_user.id)
    return jsonify(holds=[hold_json(hold, user.email) for hold, user in rows])


@bp.delete("/holds/<int:hold_id>")
@documented(
    "Cancel a hold (owner or librarian; a librarian's note goes to the patron)",
    request=HoldCancel,
    responses={204: None},
    tags=("library",),
    errors=(403, 404, 409),
)
@login_required
def cancel_hold(hold_id: int):
    """Cancel a hold (its owner or a librarian), with an optional {"note"}."""
    data = request.get_json(silent=True) if request.content_length else None
    if data is not None and not isinstance(data, dict):
        raise Invalid(None, gettext("Send a JSON object."))
    services.cancel_hold(current_user, hold_id, (data or {}).get("note"))
    return "", 204


@bp.patch("/holds/<int:hold_id>")
@documented(
    "Suspend or resume a waiting hold, or set its not-needed-after date (owner or librarian)",
    request=HoldChanges,
    responses={200: HoldOut},
    tags=("library",),
    errors=(403, 404, 409),
)
@login_required
def update_hold(hold_id: int):
    """Change a waiting hold's suspension or not-needed-after date."""
    hold = services.update_hold(current_user, hold_id, _body())
    return jsonify(hold_json(hold, hold_owner_email(hold)))


def hold_owner_email(hold: Hold) -> str:
    """Return the e-mail of the hold's patron."""
    return db.session.get_one(User, hold.user_id).email


@bp.post("/loans/<int:loan_id>/renew")
@documented(
    "Renew a loan (borrower or librarian): 409 queue when someone waits, renewal_limit after 2",
    responses={200: LoanRenewed},
    tags=("library",),
    errors=(403, 404, 409),
)
@login_required
def renew_loan(loan_id: int):
    """Renew a loan: the new due date counts from the old one."""
    loan = services.renew_loan(current_user, loan_id)
    return jsonify(id=loan.id, due_date=loan.due_date.isoformat(), renewals=loan.renewals)


@bp.post("/loans")
@documented(
    "Lend a copy (librarians)",
    request=LoanIn,
    responses={201: LoanCreated},
    tags=("library",),
    errors=(403, 404, 409),
)
@role_required("librarian")
def check_out():
    """Lend a copy to a patron."""
    data = _body()
    loan = services.check_out(data.get("copy_id"), data.get("user_email"))
    return jsonify(id=loan.id, due_date=loan.due_date.isoformat()), 201


@bp.post("/copies/<int:copy_id>/return")
@documented(
    "Take a copy back (librarians)",
    responses={200: CheckedIn},
    tags=("library",),
    errors=(403, 404, 409),
)
@role_required("librarian")
def check_in(copy_id: int):
    """Take a copy back: it goes to the first waiting hold or to the shelf."""
    returned = services.check_in(copy_id)
    return jsonify(copy_status=returned.copy_status, hold_id=returned.hold_id)


@bp.post("/holds/<int:hold_id>/pickup")
@documented(
    "A ready hold is collected (librarians)",
    responses={201: PickedUp},
    tags=("library",),
    errors=(403, 404, 409),
)
@role_required("librarian")
def pick_up(hold_id: int):
    """Mark a ready hold collected: it becomes a loan."""
    return jsonify(loan_id=services.pick_up(hold_id).id), 201

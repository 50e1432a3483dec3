"""The library's JSON API (docs/api.md, "Library")."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user, login_required

from ..apidoc import documented
from ..auth import role_required
from ..errors import Forbidden, Invalid
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
    HoldPlaced,
    Holds,
    HoldsQuery,
    LoanCreated,
    LoanIn,
    PickedUp,
)

bp = Blueprint("library_api", __name__, url_prefix="/api/library")


def _body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Invalid(None, "Send a JSON object.")
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
    }


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
        raise Forbidden("all", "Only librarians see every hold.")
    rows = services.holds_for(None if everyone else current_user.id)
    return jsonify(holds=[hold_json(hold, user.email) for hold, user in rows])


@bp.delete("/holds/<int:hold_id>")
@documented(
    "Cancel a hold (owner or librarian)",
    responses={204: None},
    tags=("library",),
    errors=(403, 404, 409),
)
@login_required
def cancel_hold(hold_id: int):
    """Cancel a hold (its owner or a librarian)."""
    services.cancel_hold(current_user, hold_id)
    return "", 204


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
    copy, hold = services.check_in(copy_id)
    return jsonify(copy_status=copy.status, hold_id=hold.id if hold else None)


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

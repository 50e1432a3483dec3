"""The library API's shapes, for the OpenAPI document (services.py validates the input)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

HoldStatus = Literal["waiting", "ready", "fulfilled", "cancelled", "expired"]


class BookQuery(BaseModel):
    q: str | None = Field(None, max_length=200, description="title, author or ISBN")


class Book(BaseModel):
    id: int
    title: str
    author: str
    isbn: str | None
    copies_total: int
    copies_available: int
    waiting_holds: int


class Books(BaseModel):
    """The catalogue with live availability."""

    books: list[Book]


class BookIn(BaseModel):
    title: str = Field(min_length=1, max_length=300)
    author: str
    isbn: str | None = None
    copies: int = Field(ge=1)


class BookCreated(BaseModel):
    """The new book and its copies."""

    id: int
    copy_ids: list[int]


class CopiesIn(BaseModel):
    count: int = Field(ge=1)


class CopiesCreated(BaseModel):
    """The new copies."""

    copy_ids: list[int]


class HoldPlaced(BaseModel):
    """The hold and its place in the queue."""

    id: int
    status: HoldStatus
    position: int | None


class HoldsQuery(BaseModel):
    all: str | None = Field(None, description="1: every hold (librarians)")


class HoldOut(BaseModel):
    id: int
    book_id: int
    user_email: str
    status: HoldStatus
    position: int | None
    pickup_deadline: datetime | None
    suspended_until: date | None
    not_needed_after: date | None


class HoldChanges(BaseModel):
    """Suspend (a future date) or resume (null); the last day the book is still wanted."""

    suspended_until: date | None = None
    not_needed_after: date | None = None


class HoldCancel(BaseModel):
    """A librarian's note to the patron (sent with `hold_cancelled`)."""

    note: str | None = Field(None, max_length=500)


class LoanRenewed(BaseModel):
    """The renewed loan: its new due date and how many renewals it has had."""

    id: int
    due_date: date
    renewals: int


class Holds(BaseModel):
    """Holds, oldest first."""

    holds: list[HoldOut]


class LoanIn(BaseModel):
    copy_id: int
    user_email: str


class LoanCreated(BaseModel):
    """The loan and its due date."""

    id: int
    due_date: date


class CheckedIn(BaseModel):
    """Where the copy went: to a waiting hold (now ready) or the shelf."""

    copy_status: str
    hold_id: int | None


class PickedUp(BaseModel):
    """The loan the hold became."""

    loan_id: int

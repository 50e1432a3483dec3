"""Books, copies, loans and holds."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..database import UTCDateTime
from ..extensions import Model
from ..timeutil import utcnow

COPY_STATUSES = ("shelf", "loaned", "held")
HOLD_STATUSES = ("waiting", "ready", "fulfilled", "cancelled", "expired")
ACTIVE_HOLD = ("waiting", "ready")


class Book(Model):
    __tablename__ = "book"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    author: Mapped[str] = mapped_column(String(200))
    isbn: Mapped[str | None] = mapped_column(String(17), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    copies: Mapped[list[Copy]] = relationship(back_populates="book", order_by="Copy.id")


class Copy(Model):
    """One physical copy; its status says where it is."""

    __tablename__ = "book_copy"
    __table_args__ = (CheckConstraint("status IN ('shelf', 'loaned', 'held')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("book.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="shelf")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    book: Mapped[Book] = relationship(back_populates="copies")


class Loan(Model):
    __tablename__ = "loan"
    __table_args__ = (
        # One copy is never on two active loans.
        Index(
            "uq_loan_active_copy",
            "copy_id",
            unique=True,
            sqlite_where=text("returned_at IS NULL"),
            postgresql_where=text("returned_at IS NULL"),
        ),
        # remind-loans reads active loans by due date.
        Index(
            "ix_loan_active_due",
            "due_date",
            "id",
            sqlite_where=text("returned_at IS NULL"),
            postgresql_where=text("returned_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    copy_id: Mapped[int] = mapped_column(ForeignKey("book_copy.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    checked_out_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_date: Mapped[date] = mapped_column(Date)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    renewals: Mapped[int] = mapped_column(default=0, server_default="0")

    copy: Mapped[Copy] = relationship()


class Hold(Model):
    """A patron's place in a book's queue: waiting → ready → fulfilled (or cancelled/expired)."""

    __tablename__ = "hold"
    __table_args__ = (
        CheckConstraint(
            "status IN ('waiting', 'ready', 'fulfilled', 'cancelled', 'expired')", name="status"
        ),
        # A ready hold has its copy set aside and a pickup deadline.
        CheckConstraint(
            "status != 'ready' OR (copy_id IS NOT NULL AND pickup_deadline IS NOT NULL)",
            name="ready_has_copy",
        ),
        # A patron holds a book at most once at a time.
        Index(
            "uq_hold_active_patron",
            "book_id",
            "user_id",
            unique=True,
            sqlite_where=text("status IN ('waiting', 'ready')"),
            postgresql_where=text("status IN ('waiting', 'ready')"),
        ),
        # One copy is never held for two holds.
        Index(
            "uq_hold_ready_copy",
            "copy_id",
            unique=True,
            sqlite_where=text("status = 'ready'"),
            postgresql_where=text("status = 'ready'"),
        ),
        # The queue: waiting holds of a book in order.
        Index("ix_hold_queue", "book_id", "status", "created_at", "id"),
        Index("ix_hold_status_deadline", "status", "pickup_deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("book.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), default="waiting")
    copy_id: Mapped[int | None] = mapped_column(ForeignKey("book_copy.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pickup_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A suspended hold keeps its place but is skipped until this local date.
    suspended_until: Mapped[date | None] = mapped_column(Date)
    # The patron's last useful day: the hold expires once it has passed.
    not_needed_after: Mapped[date | None] = mapped_column(Date)
    # The librarian's note when the library cancelled it.
    note: Mapped[str | None] = mapped_column(String(500))

    book: Mapped[Book] = relationship()

    def suspended_on(self, day: date) -> bool:
        """Tell whether the hold is suspended on this local date (skipped for copies)."""
        return self.suspended_until is not None and self.suspended_until > day

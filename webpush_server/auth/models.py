"""Accounts and roles."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from ..database import UTCDateTime
from ..extensions import Model
from ..timeutil import utcnow

ROLES = ("patron", "librarian", "admin")


class User(UserMixin, Model):
    __tablename__ = "user_account"
    __table_args__ = (CheckConstraint("role IN ('patron', 'librarian', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="patron")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def set_password(self, password: str) -> None:
        """Store a salted hash of password."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """Tell whether password matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    def has_role(self, *roles: str) -> bool:
        """Tell whether the user has one of roles; admins may do everything."""
        return self.role == "admin" or self.role in roles

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class UserSession(Model):
    """A logged-in session: the cookie holds a random token, this row its SHA-256.

    The session cookie is signed but lives in the browser, so only a row here can end it on
    the server: logout and revocation delete rows, and a cookie without its row is refused.
    """

    __tablename__ = "user_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PasswordReset(Model):
    """A password reset asked for by e-mail: its link is signed with this row's id.

    The link carries no secret stored here: it is the id signed with SECRET_KEY, so a copy of
    the database cannot forge one. used_at makes it single-use.
    """

    __tablename__ = "password_reset"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

"""Accounts: create and authenticate."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from ..errors import Conflict, Invalid
from ..extensions import db
from .models import ROLES, User

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalize_email(email: str) -> str:
    """Return the canonical (trimmed, lower-case) form of an e-mail address."""
    return email.strip().lower()


def create_user(email: str, password: str, role: str = "patron", name: str | None = None) -> User:
    """Create an account; refuse a taken e-mail (Conflict)."""
    email = normalize_email(email)
    if not _EMAIL.fullmatch(email) or len(email) > 254:
        raise Invalid("email", "email must be an e-mail address.")
    if len(password) < 8:
        raise Invalid("password", "password must be at least 8 characters.")
    if role not in ROLES:
        raise Invalid("role", f"role must be one of {', '.join(ROLES)}.")
    if find_user(email) is not None:
        raise Conflict("email", f"a user with e-mail {email} already exists", "exists")
    user = User(email=email, role=role, name=(name or email.split("@")[0])[:120])
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def find_user(email: str) -> User | None:
    """Return the user with this e-mail, if any."""
    return db.session.scalar(select(User).where(func.lower(User.email) == normalize_email(email)))


def authenticate(email: str, password: str) -> User | None:
    """Return the user when the password matches, else None."""
    user = find_user(email)
    if user is None or not user.check_password(password):
        return None
    return user

"""Accounts: create, authenticate, change passwords and roles, and server-side sessions."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from functools import cache

from flask import current_app
from flask_babel import gettext
from sqlalchemy import bindparam, delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..database import rows_changed
from ..errors import Conflict, Invalid, InvalidFields, NotFound, Refused
from ..extensions import db
from ..timeutil import utcnow
from .models import ROLES, User, UserSession
from .passwords import check_password_policy

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalize_email(email: str) -> str:
    """Return the canonical (trimmed, lower-case) form of an e-mail address."""
    return email.strip().lower()


def create_user(email: str, password: str, role: str = "patron", name: str | None = None) -> User:
    """Create an account; refuse a taken e-mail (Conflict)."""
    email = normalize_email(email)
    if not _EMAIL.fullmatch(email) or len(email) > 254:
        raise Invalid("email", gettext("E-mail must be an e-mail address."))
    check_password_policy(password)
    if role not in ROLES:
        raise Invalid("role", gettext("Role must be one of %(roles)s.", roles=", ".join(ROLES)))
    if find_user(email) is not None:
        raise Conflict(
            "email", gettext("A user with e-mail %(email)s already exists.", email=email), "exists"
        )
    user = User(email=email, role=role, name=(name or email.split("@")[0])[:120])
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def find_user(email: str) -> User | None:
    """Return the user with this e-mail, if any."""
    return db.session.scalar(select(User).where(func.lower(User.email) == normalize_email(email)))


@cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(email: str, password: str) -> User | None:
    """Return the user when the password matches, else None, in the same time either way."""
    user = find_user(email)
    if user is None:
        # Hash anyway: skipping the hash for unknown e-mails told strangers who has an account.
        check_password_hash(_dummy_hash(), password)
        return None
    if not user.check_password(password):
        return None
    return user


def change_password(user: User, current: object, new: object, keep_session: str | None) -> None:
    """Set a new password after checking the current one; end every other session."""
    # Both fields are checked before refusing, so the form shows every mistake at once.
    refusals: dict[str, Refused] = {}
    if not isinstance(current, str) or not user.check_password(current):
        refusals["current_password"] = Invalid(
            "current_password", gettext("The current password is wrong."), "wrong_password"
        )
    try:
        new = check_password_policy(new, "new_password")
    except Refused as weak:
        refusals["new_password"] = weak
    else:
        if new == current:
            refusals["new_password"] = Invalid(
                "new_password", gettext("New password must differ from the current one.")
            )
    if len(refusals) > 1:
        raise InvalidFields({name: each.message for name, each in refusals.items()})
    for only in refusals.values():
        raise only
    assert isinstance(new, str)
    user.set_password(new)
    _end_sessions(user.id, keep_session)
    db.session.commit()


def set_role(email: str, role: str) -> User:
    """Give the account with this e-mail a role; its audit event is written in the same commit."""
    from ..admin import audit

    if role not in ROLES:
        raise Invalid("role", gettext("Role must be one of %(roles)s.", roles=", ".join(ROLES)))
    user = find_user(email)
    if user is None:
        raise NotFound("email", gettext("No user with e-mail %(email)s.", email=email))
    if user.role != role:
        audit.record("user.role", f"{user.email}: {user.role} -> {role}")
        user.role = role
    db.session.commit()
    return user


# -- Server-side sessions --------------------------------------------------------------------


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(user: User) -> str:
    """Record a new session for user and return its token (to keep in the session cookie)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    max_age = timedelta(seconds=current_app.config["SESSION_MAX_AGE_SECONDS"])
    # Sessions nobody logged out of (closed browsers) end here, so rows do not pile up.
    db.session.execute(
        delete(UserSession).where(
            UserSession.user_id == user.id, UserSession.created_at < now - max_age
        )
    )
    db.session.add(UserSession(id=_token_id(token), user_id=user.id, created_at=now))
    db.session.commit()
    return token


# Built once: every signed-in request runs it (building it anew was ~300 Python calls each).
_SESSION_USER = (
    select(User)
    .join(UserSession, UserSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        UserSession.id == bindparam("session_id"),
        UserSession.created_at >= bindparam("since"),
    )
)


def session_user(user_id: int, token: object) -> User | None:
    """Return the user of a live session (its row exists and is young enough), else None."""
    if not isinstance(token, str) or not token:
        return None
    max_age = timedelta(seconds=current_app.config["SESSION_MAX_AGE_SECONDS"])
    return db.session.scalar(
        _SESSION_USER,
        {"user_id": user_id, "session_id": _token_id(token), "since": utcnow() - max_age},
    )


def end_session(token: object) -> None:
    """End one session (logout); an unknown token is fine."""
    if isinstance(token, str) and token:
        db.session.execute(delete(UserSession).where(UserSession.id == _token_id(token)))
        db.session.commit()


def end_other_sessions(user_id: int, keep: str | None) -> int:
    """End every session of the user but keep; return how many ended."""
    ended = _end_sessions(user_id, keep)
    db.session.commit()
    return ended


def _end_sessions(user_id: int, keep: str | None) -> int:
    stmt = delete(UserSession).where(UserSession.user_id == user_id)
    if keep:
        stmt = stmt.where(UserSession.id != _token_id(keep))
    return rows_changed(stmt)

"""Password reset by e-mail: ask (same answer for every address), follow the link, set anew.

The link is the reset row's id signed with SECRET_KEY (channels/tokens.py); the row holds
its expiry (PASSWORD_RESET_MINUTES) and its use, so it works once. Setting the password ends
every session of the account. The e-mail travels through the outbox like any notice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, gettext, lazy_gettext
from sqlalchemy import update

from ..channels.tokens import read_reset_token
from ..database import rows_changed
from ..errors import Invalid, Refused, http_status, refusal_response
from ..extensions import configured_limit, db, limiter
from ..notifications.record import Notice, record_notices
from ..timeutil import utcnow
from .models import PasswordReset, User
from .passwords import MIN_LENGTH, check_password_policy
from .services import _end_sessions, find_user

log = logging.getLogger(__name__)
bp = Blueprint("password_reset", __name__)
DEFAULTS = {"RATELIMIT_PASSWORD_RESET": "10 per hour"}
# Every request gets this answer, whether or not an account has the address.
ANSWER = lazy_gettext(
    "If an account uses this address, we have e-mailed it a link to set a new password."
)
EXPIRED = lazy_gettext("This link has expired or was used already. Ask for a new one.")


def request_reset(email: object) -> None:
    """Record a reset and its e-mail if an account has this address; else do nothing."""
    if not isinstance(email, str) or not email.strip() or len(email) > 254:
        raise Invalid("email", gettext("E-mail: the address of your account."))
    user = find_user(email)
    if user is None:
        return
    now = utcnow()
    minutes = current_app.config["PASSWORD_RESET_MINUTES"]
    reset = PasswordReset(
        user_id=user.id, created_at=now, expires_at=now + timedelta(minutes=minutes)
    )
    db.session.add(reset)
    db.session.flush()
    # The e-mail speaks the language of the page that asked for it (else the preference's).
    language = str(get_locale() or "") or None
    record_notices(
        [
            Notice(
                user_id=user.id,
                kind="password_reset",
                title=gettext("Reset your password"),
                body=gettext("You asked for a link to set a new password; it was e-mailed to you."),
                url="/account/password",
                dedupe_key=f"password-reset:{reset.id}",
                expires_at=reset.expires_at,
                data={"reset_id": reset.id, "language": language},
                push=False,
                channels=frozenset({"email"}),
            )
        ],
        now,
    )
    db.session.commit()


def usable_reset(token: str) -> PasswordReset:
    """Return the reset a link names if it is genuine, unused and unexpired; else refuse."""
    reset_id = read_reset_token(token)
    reset = db.session.get(PasswordReset, reset_id) if reset_id is not None else None
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        raise Invalid("token", str(EXPIRED))
    return reset


def complete_reset(token: str, new_password: object) -> User:
    """Set the new password, use up every open reset of the account, end all its sessions."""
    reset = usable_reset(token)
    password = check_password_policy(new_password, "new_password")
    now = utcnow()
    # Conditional: of two tabs posting the same link at once, one wins.
    won = rows_changed(
        update(PasswordReset)
        .where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    if not won:
        db.session.rollback()
        raise Invalid("token", str(EXPIRED))
    db.session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == reset.user_id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    user = db.session.get(User, reset.user_id)
    assert user is not None  # the reset row goes with its account (cascade)
    user.set_password(password)
    _end_sessions(user.id, None)
    db.session.commit()
    return user


def _wants_json() -> bool:
    return request.is_json


@bp.route("/account/password-reset", methods=["GET", "POST"])
@limiter.limit(configured_limit("RATELIMIT_PASSWORD_RESET"), methods=["POST"])
def ask():
    """Ask for a reset link; the answer is the same whether or not the address is known."""
    if request.method == "GET":
        return render_template("auth/password_reset.html", sent=False)
    raw = request.get_json(silent=True) if _wants_json() else request.form
    data = raw if isinstance(raw, dict) or hasattr(raw, "get") else {}
    try:
        request_reset(data.get("email") if data is not None else None)
    except Refused as error:
        if _wants_json():
            return refusal_response(error)
        return render_template("auth/password_reset.html", sent=False, error=error), 400
    if _wants_json():
        return jsonify(message=str(ANSWER)), 202
    return render_template("auth/password_reset.html", sent=True, message=ANSWER), 202


@bp.route("/account/password-reset/<token>", methods=["GET", "POST"])
def choose(token: str):
    """Show the new-password form of a genuine link; set the password and sign out everywhere."""
    try:
        if request.method == "GET":
            usable_reset(token)
            return render_template("auth/password_new.html", token=token, min_length=MIN_LENGTH)
        raw = request.get_json(silent=True) if _wants_json() else request.form
        data = raw if raw is not None and hasattr(raw, "get") else {}
        complete_reset(token, data.get("new_password"))
    except Refused as error:
        if _wants_json():
            return refusal_response(error)
        page = render_template(
            "auth/password_new.html",
            token=token,
            min_length=MIN_LENGTH,
            error=error,
            dead=error.field == "token",
        )
        return page, http_status(error)
    if _wants_json():
        return jsonify(reset=True)
    flash(
        gettext("Password set. Every session of your account was signed out: log in again."),
        "success",
    )
    return redirect(url_for("auth.login"))

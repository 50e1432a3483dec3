"""Login and logout, the password page and ending other sessions."""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext, ngettext
from flask_login import current_user, login_required, login_user, logout_user

from ..errors import Refused, http_status, refusal_response, safe_back
from . import SESSION_TOKEN_KEY, services, throttle
from .passwords import MIN_LENGTH

bp = Blueprint("auth", __name__)


def _demo_accounts() -> list[tuple[str, str, str]] | None:
    """Return (role, email, password) of each demo account when the app runs as the demo."""
    if not current_app.config.get("DEMO_ACCOUNTS"):
        return None
    from ..demo import DEMO_PASSWORD, DEMO_USERS

    return [(role, email, DEMO_PASSWORD) for email, role, _name in DEMO_USERS]


def _safe_next(target: str | None) -> str:
    return safe_back(target, url_for("main.index"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; sign the user in on POST (failures are throttled)."""
    if request.method == "GET":
        return render_template(
            "auth/login.html",
            next=request.args.get("next", ""),
            email="",
            demo_accounts=_demo_accounts(),
        )
    email = request.form.get("email", "")
    address = request.remote_addr
    throttle.check(email, address)
    user = services.authenticate(email, request.form.get("password", ""))
    if user is None:
        throttle.failed(email, address)
        return (
            render_template(
                "auth/login.html",
                error=gettext("Wrong e-mail or password."),
                email=email,
                next=request.form.get("next", ""),
                demo_accounts=_demo_accounts(),
            ),
            401,
        )
    throttle.succeeded(email)
    _start_session(user)
    flash(gettext("Welcome, %(name)s.", name=user.name), "success")
    return redirect(_safe_next(request.form.get("next")))


def _start_session(user) -> None:
    """Log user in with a fresh server-side session and a fresh CSRF token."""
    session.clear()
    # Flask-WTF caches the token per request in g; both must go for a new one to be made.
    g.pop("csrf_token", None)
    login_user(user)
    session[SESSION_TOKEN_KEY] = services.start_session(user)


@bp.post("/logout")
@login_required
def logout():
    """Sign out: this session ends on the server too, so its cookie is worthless."""
    services.end_session(session.get(SESSION_TOKEN_KEY))
    logout_user()
    session.clear()
    flash(gettext("You are signed out."), "info")
    return redirect(url_for("auth.login"))


def _json_request() -> bool:
    """Tell whether a caller of the account actions speaks JSON rather than a form."""
    # A form always carries its csrf_token field; a script sends JSON or only the header.
    return request.is_json or (not request.form and "X-CSRFToken" in request.headers)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    """Show the password form; change the password (form or JSON) and end other sessions."""
    if request.method == "GET":
        return render_template("auth/password.html", min_length=MIN_LENGTH)
    as_json = _json_request()
    raw = request.get_json(silent=True) if as_json else request.form
    # A form is a (multi)dict too; a JSON body that is not an object has no fields.
    data: dict = raw if isinstance(raw, dict) else {}
    try:
        services.change_password(
            current_user,
            data.get("current_password"),
            data.get("new_password"),
            session.get(SESSION_TOKEN_KEY),
        )
    except Refused as error:
        if as_json:
            return refusal_response(error)
        errors = getattr(error, "errors", None) or {error.field: error.message}
        page = render_template(
            "auth/password.html", min_length=MIN_LENGTH, error=error, errors=errors
        )
        return page, http_status(error)
    if as_json:
        return jsonify(changed=True)
    flash(gettext("Password changed. Every other session has been signed out."), "success")
    return redirect(url_for("auth.password"))


@bp.post("/account/sessions/revoke")
@login_required
def revoke_sessions():
    """End every other session of this account; keep this one."""
    ended = services.end_other_sessions(current_user.id, session.get(SESSION_TOKEN_KEY))
    if _json_request():
        return jsonify(ended=ended)
    flash(
        ngettext("Signed out %(num)d other session.", "Signed out %(num)d other sessions.", ended),
        "success",
    )
    return redirect(url_for("auth.password"))

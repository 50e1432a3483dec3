"""Accounts, roles and sessions."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, abort, redirect, request, session, url_for
from flask_login import current_user

from ..errors import as_id, error_response, wants_json
from ..extensions import csrf, login_manager

# Where the session cookie keeps the token of its server-side session row.
SESSION_TOKEN_KEY = "sid"

DEFAULTS = {
    # A session older than this is refused even if its browser kept it (rows are pruned too).
    "SESSION_MAX_AGE_SECONDS": 30 * 86400,
}


def init_app(app: Flask) -> None:
    """Wire Flask-Login and CSRF; add the login pages and `flask user`.

    Users load by id and session token: a cookie whose session was ended on the server
    (logout, revocation, a password change) loads nobody. The API answers 401 JSON, pages
    redirect to the login form.
    """
    from . import api, cli, reset, services, throttle, views
    from .models import User

    for name, value in {**DEFAULTS, **throttle.DEFAULTS, **reset.DEFAULTS}.items():
        app.config.setdefault(name, value)
    login_manager.init_app(app)
    _csrf_after_login_check(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(cli.bp)
    app.register_blueprint(reset.bp)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        key = as_id(user_id)
        return services.session_user(key, session.get(SESSION_TOKEN_KEY)) if key else None

    @login_manager.unauthorized_handler
    def unauthorized():
        if wants_json():
            return error_response(401, "unauthorized", "Log in first.")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def role_required(*roles: str) -> Callable:
    """Allow the view only to logged-in users with one of roles (admins always)."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(*roles):
                abort(403, description="You are not allowed to do that.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def _csrf_after_login_check(app: Flask) -> None:
    """Check CSRF on every unsafe request, but let anonymous API calls reach their 401.

    An anonymous request carries no session a forger could ride on, and the API promises
    401 (not a CSRF 400) to clients that are not logged in.
    """
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False

    @app.before_request
    def protect():
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return None
        if request.path.startswith("/api/") and not current_user.is_authenticated:
            return None
        view = app.view_functions.get(request.endpoint or "")
        if getattr(view, "same_origin_only", False):
            if is_same_origin():
                return None
            return error_response(403, "forbidden_origin", "Only this site may send this.")
        # Exempt blueprints (the service API: bearer keys, no session) are skipped.
        csrf.protect(apply_exemptions=True)
        return None


def same_origin_only(view: Callable) -> Callable:
    """Take this unsafe request without a CSRF token, from our own origin only.

    For the service worker, which has no page to read the token from: browsers send
    Sec-Fetch-Site (and Origin) on every fetch a page or worker makes, and no other site can
    forge either, so a request without them, or from elsewhere, is refused.
    """
    view.same_origin_only = True  # type: ignore[attr-defined]
    return view


def is_same_origin() -> bool:
    """Tell whether the browser says this request comes from our own origin."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("Origin")
    return bool(origin) and urlsplit(origin).netloc == request.host

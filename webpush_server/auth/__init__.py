"""Accounts, roles and sessions."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Flask, abort, redirect, request, url_for
from flask_login import current_user

from ..errors import as_id, error_response, wants_json
from ..extensions import csrf, db, login_manager


def init_app(app: Flask) -> None:
    """Wire Flask-Login and CSRF; add the login pages and `flask user`.

    Users load by id; the API answers 401 JSON, pages redirect to the login form.
    """
    from . import cli, views
    from .models import User

    login_manager.init_app(app)
    _csrf_after_login_check(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(cli.bp)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        key = as_id(user_id)
        return db.session.get(User, key) if key is not None else None

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
    def protect() -> None:
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return
        if request.path.startswith("/api/") and not current_user.is_authenticated:
            return
        # Exempt blueprints (the service API: bearer keys, no session) are skipped.
        csrf.protect(apply_exemptions=True)

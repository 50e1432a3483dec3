"""Accounts, roles and sessions."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Flask, abort, redirect, request, url_for
from flask_login import current_user

from ..errors import error_response, wants_json
from ..extensions import db, login_manager


def init_app(app: Flask) -> None:
    """Wire Flask-Login: load users by id, 401 JSON for the API, a redirect for pages."""
    from .models import User

    login_manager.init_app(app)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return db.session.get(User, int(user_id)) if user_id.isdigit() else None

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

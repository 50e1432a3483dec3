"""Which language a request, a job or a template speaks."""

from __future__ import annotations

from flask import current_app, has_app_context, has_request_context, request
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from .catalog import LANGUAGES


def select_locale() -> str:
    """Choose the request's language: preference, then the switch's cookie, then the browser.

    Outside a request (jobs, the CLI) Flask-Babel uses BABEL_DEFAULT_LOCALE, and
    flask_babel.force_locale() renders a recipient's text in the recipient's language.
    """
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = user_language()
    if chosen:
        return chosen
    cookie = request.cookies.get(current_app.config["LANGUAGE_COOKIE"])
    if cookie in LANGUAGES:
        return cookie
    best = request.accept_languages.best_match(LANGUAGES)
    return best or current_app.config["BABEL_DEFAULT_LOCALE"]


def user_language() -> str | None:
    """Return the logged-in user's chosen language, or None (anonymous, or never chose)."""
    from ..channels.models import Preference
    from ..extensions import db

    try:
        if not current_user or not current_user.is_authenticated:
            return None
        row = db.session.get(Preference, current_user.id)
    except SQLAlchemyError:
        # The error page of a failing database still renders, in the browser's language.
        db.session.rollback()
        return None
    if row is not None and row.language in LANGUAGES:
        return row.language
    return None


def current_language() -> str:
    """Return the language in force: the request's, a forced one, or the default."""
    from flask_babel import get_locale

    if not has_app_context():
        return "en"
    locale = get_locale()
    if locale is None:
        return current_app.config.get("BABEL_DEFAULT_LOCALE", "ko")
    return locale.language if locale.language in LANGUAGES else "en"

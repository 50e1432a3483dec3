"""Korean and English: Flask-Babel, the language of each request, the switch, the JS catalog.

The language of a request is the logged-in user's preference, else the `lang` cookie the
header's switch sets, else the best `Accept-Language` match, else BABEL_DEFAULT_LOCALE
(Korean). English is the source language: only translations/ko has a catalog.
"""

from __future__ import annotations

from flask import Flask

from .catalog import LANGUAGES

DEFAULTS = {
    "BABEL_DEFAULT_LOCALE": "ko",
    # The seeds' users and APP_TIMEZONE are Korean; the switch sets this cookie for a year.
    "LANGUAGE_COOKIE": "lang",
}

__all__ = ["LANGUAGES", "init_app"]


def init_app(app: Flask) -> None:
    """Compile the catalogs if stale, bind Flask-Babel and add the language switch."""
    from flask_babel import Babel

    from . import catalog, views
    from .locale import select_locale

    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    if app.config["BABEL_DEFAULT_LOCALE"] not in LANGUAGES:
        raise ValueError(f"BABEL_DEFAULT_LOCALE: one of {', '.join(LANGUAGES)}.")
    directory = catalog.compiled_directory(app.instance_path)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(directory)
    app.extensions["js_catalogs"] = catalog.js_catalogs()
    Babel(app, locale_selector=select_locale)
    # {% trans %} blocks collapse their whitespace, as babel.cfg extracts them (trimmed).
    app.jinja_env.policies["ext.i18n.trimmed"] = True
    app.register_blueprint(views.bp)
    app.after_request(views.vary_on_language)

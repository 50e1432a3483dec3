"""The header's language switch and the JS catalog."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user
from pydantic import RootModel

from ..apidoc import documented
from ..errors import Invalid, NotFound, safe_back
from .catalog import LANGUAGES
from .locale import current_language

bp = Blueprint("i18n", __name__)
# The cookie outlives sessions: the switch is remembered on this browser for a year.
COOKIE_SECONDS = 365 * 86_400
# Language names as their speakers write them, for the switch.
NAMES = {"ko": "한국어", "en": "English"}


@bp.post("/language")
def switch_language():
    """Switch this browser's language; a logged-in user's preference follows it."""
    from ..channels.preferences import update_preferences

    language = request.form.get("language", "")
    if language not in LANGUAGES:
        choices = ", ".join(LANGUAGES)
        raise Invalid("language", gettext("language: one of %(choices)s.", choices=choices))
    if current_user.is_authenticated:
        update_preferences(current_user, {"language": language})
    back = safe_back(request.form.get("next"), url_for("main.index"))
    response = redirect(back, code=303)
    response.set_cookie(
        current_app.config["LANGUAGE_COOKIE"],
        language,
        max_age=COOKIE_SECONDS,
        samesite="Lax",
        httponly=True,
        secure=request.is_secure,
    )
    return response


class Catalog(RootModel[dict[str, str | list[str]]]):
    """The translations of the pages' and service worker's strings: msgid to text or forms."""


@bp.get("/i18n/<language>.json")
@documented(
    "The translations static/ uses, for one language",
    responses={200: Catalog},
    auth="none",
    tags=("pages",),
    errors=(404,),
)
def js_catalog(language: str):
    """Serve the translations of static/ strings (the service worker reads them here)."""
    catalogs = current_app.extensions["js_catalogs"]
    if language not in catalogs:
        raise NotFound("language", f"No catalog for {language!r}.")
    response = jsonify(catalogs[language])
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response


@bp.app_context_processor
def language_helpers() -> dict:
    """Give every template its language, the switch's target and the JS strings' catalog."""
    language = current_language()
    other = "en" if language == "ko" else "ko"
    return {
        "page_language": language,
        "other_language": {"code": other, "name": NAMES[other]},
        "js_catalog": current_app.extensions["js_catalogs"].get(language, {}),
        # The header's role tag, in the page's words (the stored role stays the English key).
        "role_names": {
            "patron": gettext("patron"),
            "librarian": gettext("librarian"),
            "admin": gettext("admin"),
        },
    }


def _status_words() -> dict[str, str]:
    # Stored states stay English keys (CSS classes, data-status, the API); pages say them so.
    return {
        # holds
        "waiting": gettext("waiting"),
        "ready": gettext("ready"),
        "fulfilled": gettext("fulfilled"),
        "expired": gettext("expired"),
        "cancelled": gettext("cancelled"),
        # campaigns and coupons
        "open": gettext("open"),
        "succeeded": gettext("succeeded"),
        "failed": gettext("failed"),
        "active": gettext("active"),
        "used": gettext("used"),
        # deliveries and job executions
        "pending": gettext("pending"),
        "sending": gettext("sending"),
        "sent": gettext("sent"),
        "dead": gettext("dead"),
        "skipped": gettext("skipped"),
        "gone": gettext("gone"),
        "held": gettext("held"),
        "scheduled": gettext("scheduled"),
        "queued": gettext("queued"),
        "started": gettext("started"),
        "completed": gettext("completed"),
        "stopped": gettext("stopped"),
        "abandoned": gettext("abandoned"),
    }


@bp.app_template_filter("status_word")
def status_word(status: str | None) -> str:
    """Say a stored status (waiting, sent, failed…) in the page's language."""
    if not status:
        return ""
    return _status_words().get(status, status)


def vary_on_language(response: Response) -> Response:
    """Tell caches a page differs by Accept-Language and by the switch's cookie."""
    if response.mimetype == "text/html":
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")
    return response

"""Home page, the service worker and the web app manifest."""

from __future__ import annotations

from datetime import date, datetime

from flask import Blueprint, current_app, render_template, send_from_directory

from .timeutil import app_zone

bp = Blueprint("main", __name__)


@bp.app_template_filter("localtime")
def localtime(value: datetime | date | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Show a stored UTC time on APP_TIMEZONE's wall clock (dates pass through)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.astimezone(app_zone())
        return value.strftime(fmt)
    return value.isoformat()


@bp.get("/")
def index():
    """The home page."""
    return render_template("index.html")


@bp.get("/service-worker.js")
def service_worker():
    """Serve the service worker at the root so its scope can be the whole site."""
    response = send_from_directory(
        current_app.static_folder, "service-worker.js", mimetype="text/javascript", max_age=0
    )
    response.headers["Service-Worker-Allowed"] = "/"
    # Browsers must see a new worker at once; a cached one would keep old push handling.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    """Serve the web app manifest that makes the site installable."""
    return send_from_directory(
        current_app.static_folder, "manifest.webmanifest", mimetype="application/manifest+json"
    )

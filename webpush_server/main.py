"""Home page, the service worker and the web app manifest."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template, send_from_directory

from .notifications.kinds import KINDS
from .timeutil import local_time, money

bp = Blueprint("main", __name__)
# One formatter for times and one for money, on every page.
bp.add_app_template_filter(local_time, "local_time")
bp.add_app_template_filter(money, "won")


def init_app(app: Flask) -> None:
    """Add the home page, the service worker, the manifest and `flask seed-demo`."""
    from .demo import seed_demo

    app.register_blueprint(bp)
    app.cli.add_command(seed_demo)


def page_language() -> str:
    """Return the language pages are written in: the one place `<html lang>` is read from."""
    # English until the translations land; the language preference will be read here.
    return "en"


@bp.app_context_processor
def page_helpers() -> dict:
    """Give every template the kind labels the inbox shows (from kinds.py, not a JS copy)."""
    return {
        "kind_labels": {name: kind.label for name, kind in KINDS.items()},
        "page_language": page_language(),
    }


@bp.get("/")
def index():
    """The home page."""
    return render_template("index.html")


@bp.get("/service-worker.js")
def service_worker():
    """Serve the service worker at the root so its scope can be the whole site."""
    response = send_from_directory(
        _static_folder(), "service-worker.js", mimetype="text/javascript", max_age=0
    )
    response.headers["Service-Worker-Allowed"] = "/"
    # Browsers must see a new worker at once; a cached one would keep old push handling.
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    """Serve the web app manifest that makes the site installable."""
    return send_from_directory(
        _static_folder(), "manifest.webmanifest", mimetype="application/manifest+json"
    )


def _static_folder() -> str:
    # create_app always sets one; Flask's type allows None.
    folder = current_app.static_folder
    assert folder is not None
    return folder

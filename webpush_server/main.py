"""Home page, the service worker and the web app manifest."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template, send_from_directory
from flask_babel import gettext

from .notifications.kinds import KINDS
from .timeutil import display_zone, local_time, money, when, zone_label

bp = Blueprint("main", __name__)
# One formatter for times and one for money, on every page.
bp.add_app_template_filter(local_time, "local_time")
bp.add_app_template_filter(money, "won")
bp.add_app_template_filter(when, "when")


def init_app(app: Flask) -> None:
    """Add the home page, the service worker, the manifest and `flask seed-demo`."""
    from .demo import seed_demo

    app.register_blueprint(bp)
    app.cli.add_command(seed_demo)


@bp.app_context_processor
def page_helpers() -> dict:
    """Give every template the kind labels the inbox shows (from kinds.py, not a JS copy)."""
    return {
        "kind_labels": {name: gettext(kind.label) for name, kind in KINDS.items()},
        "time_zone": _zone_meta(),
    }


def _zone_meta() -> dict:
    """The display zone for static/js/time.js: its name and the abbreviations it uses this year."""
    from datetime import datetime

    zone = display_zone()
    year = datetime.now(zone).year
    # January and July catch both sides of daylight saving wherever it applies.
    abbreviations = {}
    for month in (1, 7):
        local = datetime(year, month, 1, 12, tzinfo=zone)
        offset = local.utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        abbreviations[str(minutes)] = zone_label(local)
    # label: the zone as a page names it now ("Deadline (KST)"), never "Asia/Seoul".
    return {
        "name": zone.key,
        "abbreviations": abbreviations,
        "label": zone_label(datetime.now(zone)),
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


@bp.get("/offline")
def offline():
    """The page the service worker shows when the network is gone (it caches this one)."""
    return render_template("offline.html")


def _static_folder() -> str:
    # create_app always sets one; Flask's type allows None.
    folder = current_app.static_folder
    assert folder is not None
    return folder

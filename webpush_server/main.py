"""Home page, the service worker and the web app manifest."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, send_from_directory

bp = Blueprint("main", __name__)


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

"""/admin/api-keys: admins create, list and revoke API keys."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext

from ..auth import role_required
from ..errors import Refused, refused_to_page
from . import keys
from .models import SITES

bp = Blueprint("service_api_admin", __name__, url_prefix="/admin")


@bp.get("/api-keys")
@role_required("admin")
def api_keys():
    """List the keys, with the form to create one."""
    return render_template("admin/api_keys.html", keys=keys.list_keys(), sites=SITES)


@bp.post("/api-keys")
@role_required("admin")
def create_api_key():
    """Create a key and show its secret on this answer only (never in a redirect or flash)."""
    try:
        key, secret = keys.create_key(request.form.get("name", ""), request.form.get("site", ""))
    except Refused as error:
        return refused_to_page(error, url_for(".api_keys"))
    return render_template(
        "admin/api_keys.html", keys=keys.list_keys(), sites=SITES, created=key, secret=secret
    )


@bp.post("/api-keys/<int:key_id>/revoke")
@role_required("admin")
def revoke_api_key(key_id: int):
    """Revoke a key."""
    try:
        key = keys.revoke_key(key_id)
    except Refused as error:
        return refused_to_page(error, url_for(".api_keys"))
    flash(gettext("Revoked key %(id)s (%(name)s).", id=key.id, name=key.name), "success")
    return redirect(url_for(".api_keys"))

"""The notifications page."""

from flask import Blueprint, render_template
from flask_login import login_required

bp = Blueprint("notifications", __name__)


@bp.get("/notifications")
@login_required
def page():
    """Push on/off for this device, my devices, test notification, and the inbox."""
    return render_template("notifications/index.html")

"""The notifications page, and the link every push message opens."""

from flask import Blueprint, redirect, render_template
from flask_login import current_user, login_required

from ..errors import safe_back
from . import services

bp = Blueprint("notifications", __name__)


@bp.get("/notifications")
@login_required
def page():
    """Push on/off for this device, my devices, test notification, and the inbox."""
    return render_template("notifications/index.html")


@bp.get("/n/<int:notification_id>")
@login_required
def open_link(notification_id: int):
    """Mark the notification read and clicked, then go to its page (owner only; else 404)."""
    row = services.open_notification(current_user.id, notification_id)
    return redirect(safe_back(row.url, "/notifications"))

"""/admin/: the operations dashboard and the lists behind its figures (admins only)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_login import current_user
from sqlalchemy import select

from ..auth.models import User
from ..errors import Refused, refused_to_page
from ..extensions import db, login_manager
from ..notifications.models import Delivery, DeliveryAttempt, Notification
from ..notifications.services import push_devices
from ..push.models import Subscription
from ..timeutil import utcnow
from . import dashboard, services

bp = Blueprint("ops", __name__, url_prefix="/admin")
LIST_LIMIT = 200


@bp.app_template_filter("host")
def host(origin: str) -> str:
    """Show a push service origin as its host (and port): the scheme is always https."""
    return origin.removeprefix("https://")


@bp.before_request
def admins_only():
    """Anonymous: the login page; any role but admin: 403."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.has_role("admin"):
        abort(403, description="The operations pages are for admins.")
    return None


@bp.get("/")
def index():
    """The dashboard: deliveries per push service, queues, dead deliveries, devices, rates."""
    now = utcnow()
    windows = {
        name: dashboard.deliveries_by_origin(dashboard.window_start(name, now))
        for name in dashboard.WINDOWS
    }
    day = dashboard.window_start("day", now)
    chart, legend = dashboard.hourly_chart(now)
    return render_template(
        "ops/dashboard.html",
        windows=windows,
        status_columns=list(dashboard.STATUS_COLUMNS),
        chart=chart,
        legend=legend,
        queues=dashboard.queue_depths(),
        now=now,
        dead=dashboard.dead_deliveries(),
        dead_total=dashboard.count_dead(),
        origin_of=dashboard.origin_of_endpoint,
        browsers=dashboard.subscriptions_by_browser(),
        rates=dashboard.rates_by_kind(day),
        config_errors=dashboard.config_errors(day),
        executions=dashboard.job_executions(),
    )


def _window_arg() -> str:
    since = request.args.get("since", "day")
    if since not in dashboard.WINDOWS:
        abort(400, description="since must be hour or day.")
    return since


@bp.get("/deliveries")
def deliveries():
    """Deliveries behind a figure: ?status= (a column of the table), &origin=, &since=."""
    since_name = _window_arg()
    since = dashboard.window_start(since_name, utcnow())
    status = request.args.get("status") or None
    origin = request.args.get("origin") or None
    query = (
        select(Delivery, Notification.kind, User.email, Subscription.endpoint)
        .join(Notification, Notification.id == Delivery.notification_id)
        .join(User, User.id == Notification.user_id)
        .outerjoin(Subscription, Subscription.id == Delivery.subscription_id)
        .order_by(Delivery.id.desc())
        .limit(LIST_LIMIT)
    )
    if status == "dead" and origin is None:
        # Every dead delivery, attempted in the window or not (the dashboard's list).
        query = query.where(Delivery.status == "dead")
    else:
        query = query.where(Delivery.id.in_(dashboard.attempted_in(since, origin)))
        if status is not None:
            if status not in dashboard.STATUS_COLUMNS:
                abort(400, description="Unknown status.")
            query = query.where(Delivery.status.in_(dashboard.STATUS_COLUMNS[status]))
    found = db.session.execute(query).all()
    return render_template(
        "ops/deliveries.html",
        rows=found,
        status=status,
        origin=origin,
        since=since_name,
        limit=LIST_LIMIT,
        origin_of=dashboard.origin_of_endpoint,
    )


@bp.get("/deliveries/<int:delivery_id>")
def delivery(delivery_id: int):
    """One delivery and every attempt of it."""
    row = db.get_or_404(Delivery, delivery_id)
    attempts = db.session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == delivery_id)
        .order_by(DeliveryAttempt.id)
    ).all()
    notification = db.session.get(Notification, row.notification_id)
    return render_template(
        "ops/delivery.html", delivery=row, attempts=attempts, notification=notification
    )


@bp.get("/notifications")
def notifications():
    """Notifications behind a rate: ?kind=, &receipt=shown|clicked, &since=."""
    since = dashboard.window_start(_window_arg(), utcnow())
    kind = request.args.get("kind") or None
    receipt = request.args.get("receipt") or None
    query = dashboard.pushed_notifications(since, kind).order_by(Notification.id.desc())
    if receipt == "shown":
        query = query.where(Notification.shown_at.is_not(None))
    elif receipt == "clicked":
        query = query.where(Notification.clicked_at.is_not(None))
    elif receipt is not None:
        abort(400, description="receipt must be shown or clicked.")
    rows = db.session.scalars(query.limit(LIST_LIMIT)).all()
    return render_template(
        "ops/notifications.html", rows=rows, kind=kind, receipt=receipt, limit=LIST_LIMIT
    )


@bp.get("/subscriptions")
def subscriptions():
    """Devices, optionally of one browser family (?browser=)."""
    from .browsers import browser_family

    family = request.args.get("browser") or None
    rows = db.session.execute(
        select(Subscription, User.email)
        .join(User, User.id == Subscription.user_id)
        .order_by(Subscription.id.desc())
    ).all()
    if family is not None:
        rows = [row for row in rows if browser_family(row[0].user_agent) == family]
    return render_template(
        "ops/subscriptions.html",
        rows=rows[:LIST_LIMIT],
        total=len(rows),
        family=family,
        browser_family=browser_family,
        origin_of=dashboard.origin_of_endpoint,
    )


@bp.post("/deliveries/<int:delivery_id>/retry")
def retry(delivery_id: int):
    """Retry a dead delivery with fresh attempts."""
    try:
        services.retry_dead(delivery_id)
    except Refused as error:
        return refused_to_page(error, url_for("ops.index"))
    flash(gettext("Delivery %(id)s is queued again.", id=delivery_id), "success")
    return redirect(url_for("ops.index") + "#dead")


@bp.post("/deliveries/<int:delivery_id>/discard")
def discard(delivery_id: int):
    """Give up on a dead delivery."""
    try:
        services.discard_dead(delivery_id, current_user.email)
    except Refused as error:
        return refused_to_page(error, url_for("ops.index"))
    flash(gettext("Delivery %(id)s is discarded.", id=delivery_id), "success")
    return redirect(url_for("ops.index") + "#dead")


@bp.post("/test")
def send_test():
    """Send a test notification to every device of any user."""
    email = request.form.get("email", "")
    try:
        notification_id = services.send_test_to(email)
    except Refused as error:
        return refused_to_page(error, url_for("ops.index"))
    devices = push_devices(notification_id)
    if not devices:
        # Nothing went out by push: saying "sent" would send the admin looking in vain.
        flash(
            gettext(
                "%(email)s has no device with push turned on, so nothing was sent by push: "
                "test notification %(id)s is only in their inbox.",
                email=email.strip(),
                id=notification_id,
            ),
            "info",
        )
    else:
        flash(
            ngettext(
                "Test notification %(id)s sent to %(email)s on %(num)d device.",
                "Test notification %(id)s sent to %(email)s on %(num)d devices.",
                devices,
                id=notification_id,
                email=email.strip(),
            ),
            "success",
        )
    return redirect(url_for("ops.index"))

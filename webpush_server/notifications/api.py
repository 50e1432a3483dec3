"""The inbox API and the test notification."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf

from ..apidoc import documented
from ..auth import same_origin_only
from ..errors import MAX_ID, whole_number
from ..extensions import configured_limit, limiter
from . import services
from .schemas import (
    CsrfToken,
    Inbox,
    InboxNotification,
    InboxQuery,
    MarkedAllRead,
    MarkedRead,
    ReceiptBody,
    ResolvedTags,
    TestSent,
)

bp = Blueprint("notifications_api", __name__, url_prefix="/api")


def _int_arg(name: str, low: int, high: int) -> int | None:
    """Return query argument name as an int from low to high, None when absent."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    return whole_number(raw, name, low, high)


@bp.get("/notifications")
@documented("The inbox, newest first", query=InboxQuery, responses={200: Inbox}, tags=("inbox",))
@login_required
def inbox():
    """List the caller's notifications, newest first."""
    rows = services.list_inbox(
        current_user.id,
        unread_only=request.args.get("unread") in ("1", "true"),
        limit=_int_arg("limit", 1, 200) or 50,
        before=_int_arg("before", 1, MAX_ID),
    )
    return jsonify(
        notifications=[row.to_json() for row in rows],
        unread_count=services.unread_count(current_user.id),
    )


@bp.get("/notifications/<int:notification_id>")
@documented("One notification", responses={200: InboxNotification}, tags=("inbox",), errors=(404,))
@login_required
def notification(notification_id: int):
    """Return one of the caller's notifications (the service worker fetches tickles here)."""
    return jsonify(services.get_notification(current_user.id, notification_id).to_json())


@bp.post("/notifications/<int:notification_id>/read")
@documented("Mark one read", responses={200: MarkedRead}, tags=("inbox",), errors=(404,))
@login_required
def mark_read(notification_id: int):
    """Mark one notification read."""
    row = services.mark_read(current_user.id, notification_id)
    return jsonify(row.to_json() | {"unread_count": services.unread_count(current_user.id)})


@bp.post("/notifications/<int:notification_id>/receipt")
@documented(
    "Report that a notification was shown, clicked or closed (the service worker; same origin,"
    " no CSRF token)",
    request=ReceiptBody,
    responses={204: None},
    tags=("inbox",),
    errors=(403, 404),
)
@same_origin_only
@login_required
def receipt(notification_id: int):
    """Record a service worker's report that the notification was shown, clicked or closed."""
    body = request.get_json(silent=True)
    event = body.get("event") if isinstance(body, dict) else None
    services.record_receipt(current_user.id, notification_id, event)
    return "", 204


@bp.post("/notifications/read-all")
@documented("Mark all read", responses={200: MarkedAllRead}, tags=("inbox",))
@login_required
def mark_all_read():
    """Mark all the caller's notifications read."""
    changed = services.mark_all_read(current_user.id)
    return jsonify(marked=changed, unread_count=0)


@bp.post("/push/test")
@documented(
    "Send a test notification to every device of the caller",
    responses={202: TestSent},
    tags=("push",),
)
@login_required
@limiter.limit(configured_limit("RATELIMIT_PUSH_TEST"))
def send_test():
    """Send a `test` notification to all the caller's devices."""
    notification_id = services.send_test(current_user.id)
    # The page says "no device" from this: a test with nowhere to go must not claim it was sent.
    return jsonify(
        notification_id=notification_id, devices=services.push_devices(notification_id)
    ), 202


@bp.get("/csrf-token")
@documented("A CSRF token for the service worker", responses={200: CsrfToken}, tags=("inbox",))
@login_required
def csrf_token():
    """Return a CSRF token for the service worker, which cannot read the page's meta tag."""
    return jsonify(csrf_token=generate_csrf())


@bp.get("/notifications/resolved")
@documented(
    "Settled tags: the service worker closes their older shown notifications",
    responses={200: ResolvedTags},
    tags=("inbox",),
)
@login_required
def resolved():
    """List the caller's recently settled tags (service-worker.js, closeResolved)."""
    return jsonify(resolved=services.resolved_tags(current_user.id))

"""The audit log for admins: /admin/audit and GET /api/admin/audit."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from ..apidoc import documented
from ..auth import role_required
from ..errors import MAX_ID, whole_number
from . import audit
from .schemas import AuditEvents, AuditQuery

pages = Blueprint("admin", __name__, url_prefix="/admin")
api = Blueprint("admin_api", __name__, url_prefix="/api/admin")

MAX_LIMIT = 500


def _page_args() -> tuple[int, int | None]:
    """Return limit (default 50) and before (an event id) from the query string."""
    limit = whole_number(request.args.get("limit", "50"), "limit", 1, MAX_LIMIT)
    raw = request.args.get("before")
    before = whole_number(raw, "before", 1, MAX_ID) if raw not in (None, "") else None
    return limit, before


@pages.get("/audit")
@role_required("admin")
def audit_page():
    """The audit log, newest first, a page at a time."""
    limit, before = _page_args()
    events = audit.recent(limit, before)
    older = events[-1].id if len(events) == limit else None
    return render_template("admin/audit.html", events=events, older=older, limit=limit)


@api.get("/audit")
@documented(
    "The audit log, newest first",
    query=AuditQuery,
    responses={200: AuditEvents},
    tags=("admin",),
    errors=(403,),
)
@role_required("admin")
def audit_events():
    """Audit events, newest first: ?limit= (1-500, default 50) and ?before=<id>."""
    limit, before = _page_args()
    return jsonify(events=[event.to_json() for event in audit.recent(limit, before)])

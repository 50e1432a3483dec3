"""/api/v1: other services send notifications with an API key (docs/api.md, "Service API").

Bearer keys only: a session cookie is neither needed nor looked at, so there is nothing for a
forged cross-site request to ride on and the blueprint is exempt from CSRF.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.wrappers import Response

from ..apidoc import documented
from ..errors import error_response
from . import keys, services
from .ratelimit import over_limit
from .schemas import (
    CancelRequest,
    CancelResponse,
    StatusResponse,
    TriggerRequest,
    TriggerResponse,
    parse,
)

bp = Blueprint("service_api", __name__, url_prefix="/api/v1")
TAGS = ("service API",)


@bp.before_request
def authenticate() -> tuple[Response, int] | None:
    """Find the caller's API key (401 otherwise) and count the request against its limit."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    key = keys.authenticate(secret.strip()) if scheme.lower() == "bearer" else None
    if key is None:
        response, status = error_response(
            401, "unauthorized", "Send a valid API key: Authorization: Bearer wps_…"
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="webpush-server"'
        return response, status
    g.caller = services.Caller(key.id, key.site)
    config = current_app.config
    wait = over_limit(
        f"apikey:{key.id}",
        config["SERVICE_API_RATE_LIMIT"],
        config["SERVICE_API_RATE_WINDOW_SECONDS"],
    )
    if wait is not None:
        response, status = error_response(
            429, "rate_limited", f"Too many requests for this API key; retry in {wait} s."
        )
        response.headers["Retry-After"] = str(wait)
        return response, status
    return None


@bp.post("/notifications")
@documented(
    "Send a notification to users (inbox, open tabs, Web Push), now or at send_at",
    request=TriggerRequest,
    responses={202: TriggerResponse},
    auth="bearer",
    tags=TAGS,
    headers={"Idempotency-Key": "≤ 255 characters; the same key and body give the first answer"},
    errors=(403, 422, 429),
)
def trigger():
    """Record a notification request; answer 202 with what was recorded."""
    idempotency_key = services.check_idempotency_key(request.headers.get("Idempotency-Key"))
    raw = request.get_data()
    body = parse(TriggerRequest, raw)
    with _slots():
        answer = services.trigger(g.caller, raw, body, idempotency_key)
    return jsonify(answer), 202


def _slots() -> AbstractContextManager:
    """Return this process's trigger slots: SERVICE_API_CONCURRENCY triggers record at once
    (0: no limit).

    CPython runs one thread's Python at a time, so more triggers at once in one process only
    take turns at the GIL; on SQLite that stretches the write lock the one holding it has to
    finish (measured, 100-recipient triggers with 8 in flight on two workers: ~3,900 recorded
    notifications/s without the limit, 4,300 to 5,300 with one slot). The rest wait here,
    before their first read, and none is refused.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config["SERVICE_API_CONCURRENCY"]:
        return nullcontext()
    slots = app.extensions.get(_SLOTS)
    if slots is None:
        with _slots_lock:
            slots = app.extensions.setdefault(
                _SLOTS, threading.BoundedSemaphore(app.config["SERVICE_API_CONCURRENCY"])
            )
    return slots


_SLOTS = "webpush_server.service_api.slots"
_slots_lock = threading.Lock()


@bp.get("/notifications/<int:request_id>")
@documented(
    "What became of a request: per recipient, deliveries by state",
    responses={200: StatusResponse},
    auth="bearer",
    tags=TAGS,
    errors=(404, 429),
)
def status(request_id: int):
    """Report one of this key's requests."""
    return jsonify(services.status(g.caller, request_id))


@bp.delete("/notifications/<int:request_id>")
@documented(
    "Cancel what has not gone out of a request",
    responses={200: CancelResponse},
    auth="bearer",
    tags=TAGS,
    errors=(404, 429),
)
def cancel(request_id: int):
    """Cancel one of this key's requests."""
    return jsonify(cancelled=services.cancel(g.caller, request_id=request_id))


@bp.post("/notifications/cancel")
@documented(
    "Cancel every request of this key with a cancellation_key",
    request=CancelRequest,
    responses={200: CancelResponse},
    auth="bearer",
    tags=TAGS,
    errors=(429,),
)
def cancel_by_key():
    """Cancel by cancellation key."""
    body = parse(CancelRequest, request.get_data())
    return jsonify(cancelled=services.cancel(g.caller, key=body.cancellation_key))

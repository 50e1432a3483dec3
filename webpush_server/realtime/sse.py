"""GET /api/notifications/stream: the live channel as Server-Sent Events (the first fallback).

The view opens the stream (handshake.begin); realtime.asgi writes the events.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request
from flask_login import login_required

from ..apidoc import documented
from ..errors import RateLimited
from ..notifications.schemas import StreamQuery
from . import handshake, replay_after

bp = Blueprint("realtime_sse", __name__, url_prefix="/api")


def _last_event_id() -> int | None:
    """Return the newest id the client has, or None for a client that wants no replay."""
    # EventSource sends Last-Event-ID when it reconnects; the first connect passes ?after=.
    if request.headers.get("Last-Event-ID"):
        return replay_after(request.headers["Last-Event-ID"], "Last-Event-ID")
    return replay_after(request.args.get("after", ""))


def event(name: str, data: dict, event_id: int | None = None) -> bytes:
    """Return one Server-Sent Event."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def events_of(message: dict) -> bytes:
    """Return the events of one tab message ({"type": ...}), as the stream writes them."""
    kind = message["type"]
    if kind == "notification":
        note = message["notification"]
        return event("notification", note, note["id"])
    if kind == "unread_count":
        return event("unread_count", {"count": message["count"]})
    if kind == "ping":
        return b": ping\n\n"
    return event(kind, {k: v for k, v in message.items() if k != "type"})


@bp.get("/notifications/stream")
@documented(
    "Live notifications as Server-Sent Events (honours Last-Event-ID)",
    query=StreamQuery,
    responses={200: "text/event-stream"},
    tags=("inbox",),
)
@login_required
def stream() -> Response:
    """Replay what the client missed since Last-Event-ID, then stream new notifications."""
    after = _last_event_id()
    found = handshake.opening()
    if found is None:
        return handshake.not_served_here()
    if not handshake.begin(found, after):
        # EventSource gives up on any status but 200; live.js then falls back to polling.
        raise RateLimited(
            None,
            "Too many live connections; close a tab or two.",
            retry_after=int(current_app.config["LIVE_SLOT_SECONDS"]),
        )
    response = Response(mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-transform"
    # nginx (and Heroku-style routers that honour it) would otherwise buffer the stream.
    response.headers["X-Accel-Buffering"] = "no"
    return response

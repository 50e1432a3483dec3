"""GET /api/notifications/stream: the live channel as Server-Sent Events (the first fallback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, request
from flask_login import current_user, login_required

from ..apidoc import documented
from ..errors import as_id
from ..extensions import db
from ..notifications import services
from ..notifications.schemas import StreamQuery
from . import broker as live

bp = Blueprint("realtime_sse", __name__, url_prefix="/api")


def _last_event_id() -> int | None:
    """Return the newest id the client has, or None for a client that wants no replay."""
    # EventSource sends Last-Event-ID when it reconnects; the first connect passes ?after=.
    raw = request.headers.get("Last-Event-ID") or request.args.get("after", "")
    return as_id(raw, lowest=0)


def _event(name: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


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
    user_id = current_user.id
    after = _last_event_id()
    hub = live.broker()
    wake = threading.Event()
    listener = live.Listener(user_id, wake)
    hub.register(listener)
    hub.wait_ready(current_app.config["LIVE_READY_TIMEOUT_SECONDS"])
    missed = services.list_since(user_id, after) if after is not None else []
    count = services.unread_count(user_id)
    db.session.remove()
    ping = current_app.config["LIVE_PING_SECONDS"]

    def events() -> Iterator[str]:
        try:
            # The client reconnects after `retry` ms; comments keep proxies from timing out.
            yield "retry: 3000\n\n"
            replayed = set()
            for row in missed:
                replayed.add(row.id)
                yield _event("notification", row.to_json(), row.id)
            yield _event("unread_count", {"count": count})
            while True:
                if not wake.wait(ping):
                    yield ": ping\n\n"
                    continue
                wake.clear()
                for message in listener.take():
                    for out in live.to_client(message):
                        if out["type"] == "notification":
                            note = out["notification"]
                            if note["id"] not in replayed:
                                yield _event("notification", note, note["id"])
                        elif out["type"] == "unread_count":
                            yield _event("unread_count", {"count": out["count"]})
                        else:
                            yield _event(out["type"], {})
        finally:
            hub.unregister(listener)

    response = Response(events(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-transform"
    # nginx (and Heroku-style routers that honour it) would otherwise buffer the stream.
    response.headers["X-Accel-Buffering"] = "no"
    return response

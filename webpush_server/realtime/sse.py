"""GET /api/notifications/stream: the live channel as Server-Sent Events (the first fallback)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

from flask import Blueprint, Response, current_app, request
from flask_login import current_user, login_required

from ..apidoc import documented
from ..errors import RateLimited
from ..extensions import db
from ..metrics import LIVE_CONNECTIONS
from ..notifications import services
from ..notifications.schemas import StreamQuery
from . import broker as live
from . import replay_after, slots

bp = Blueprint("realtime_sse", __name__, url_prefix="/api")


def _last_event_id() -> int | None:
    """Return the newest id the client has, or None for a client that wants no replay."""
    # EventSource sends Last-Event-ID when it reconnects; the first connect passes ?after=.
    if request.headers.get("Last-Event-ID"):
        return replay_after(request.headers["Last-Event-ID"], "Last-Event-ID")
    return replay_after(request.args.get("after", ""))


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
    if not slots.acquire(user_id, listener.id):
        # EventSource gives up on any status but 200; live.js then falls back to polling.
        raise RateLimited(
            None,
            "Too many live connections; close a tab or two.",
            retry_after=int(current_app.config["LIVE_SLOT_SECONDS"]),
        )
    hub.register(listener)
    hub.wait_ready(current_app.config["LIVE_READY_TIMEOUT_SECONDS"])
    missed = services.list_since(user_id, after) if after is not None else []
    count = services.unread_count(user_id)
    db.session.remove()
    ping = current_app.config["LIVE_PING_SECONDS"]
    slot_every = current_app.config["LIVE_SLOT_SECONDS"] / 3
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def events() -> Iterator[str]:
        slot_refreshed = time.monotonic()
        open_streams = LIVE_CONNECTIONS.labels(transport="sse")
        open_streams.inc()
        try:
            # The client reconnects after `retry` ms; comments keep proxies from timing out.
            yield "retry: 3000\n\n"
            replayed = set()
            for row in missed:
                replayed.add(row.id)
                yield _event("notification", row.to_json(), row.id)
            yield _event("unread_count", {"count": count})
            while True:
                if time.monotonic() - slot_refreshed >= slot_every:
                    with app.app_context():
                        slots.refresh(user_id, listener.id)
                    slot_refreshed = time.monotonic()
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
                            data = {k: v for k, v in out.items() if k != "type"}
                            yield _event(out["type"], data)
        finally:
            open_streams.dec()
            hub.unregister(listener)
            with app.app_context():
                slots.release(user_id, listener.id)

    response = Response(events(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-transform"
    # nginx (and Heroku-style routers that honour it) would otherwise buffer the stream.
    response.headers["X-Accel-Buffering"] = "no"
    return response

"""Live delivery to open tabs: Redis pub/sub, presence, the WebSocket and the SSE stream."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from flask_login import current_user

from ..errors import Invalid, as_id, error_response

# Heartbeat and presence timing: a tab whose socket died stops counting as visible within
# about LIVE_PRESENCE_SECONDS, so its user gets Web Push again.
DEFAULTS = {
    "LIVE_PING_SECONDS": 20,
    "LIVE_PRESENCE_SECONDS": 50,
    "LIVE_READY_TIMEOUT_SECONDS": 5,
    # Extra origins allowed to open /ws besides our own host (e.g. behind a renaming proxy).
    "LIVE_ALLOWED_ORIGINS": [],
    # Open WebSocket + SSE streams per user, over every web process; one more is refused.
    "LIVE_MAX_CONNECTIONS_PER_USER": 10,
    # A stream's slot lapses this long after its last refresh (a crashed process's slots).
    "LIVE_SLOT_SECONDS": 60,
}


def init_app(app: Flask) -> None:
    """Plug the publisher and presence lookup into the outbox; add /ws, SSE and their guard."""
    from ..notifications.outbox import hooks
    from . import broker, sse, ws

    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    outbox = hooks(app)
    outbox.publish = broker.publish
    outbox.visible_users = broker.visible_users
    outbox.connected_users = broker.connected_users
    outbox.presence = broker.presence
    app.before_request(guard_websocket)
    app.register_blueprint(ws.bp)
    app.register_blueprint(sse.bp)


def replay_after(raw: str, field: str = "after") -> int | None:
    """Return the newest notification id a tab has (a replay cursor), None for no replay.

    An empty value asks for no replay; anything else that is not an id is refused (Invalid).
    """
    if raw == "":
        return None
    after = as_id(raw, lowest=0)
    if after is None:
        raise Invalid(field, f"{field} must be a notification id.")
    return after


def guard_websocket():
    """Refuse /ws to anonymous sessions, other origins and bad cursors before the upgrade."""
    if request.path != "/ws":
        return None
    if not current_user.is_authenticated:
        return error_response(401, "unauthorized", "Log in first.")
    replay_after(request.args.get("after", ""))
    origin = request.headers.get("Origin", "")
    allowed = current_app.config["LIVE_ALLOWED_ORIGINS"]
    # Browsers always send Origin on a WebSocket handshake; a page on another site riding on
    # our session cookie (cross-site WebSocket hijacking) is exactly what this stops. The
    # scheme counts too: http://our-host is another origin than https://our-host.
    if not origin or (not _same_origin(origin) and origin not in allowed):
        return error_response(403, "forbidden_origin", "WebSocket from another origin.")
    return None


def _same_origin(origin: str) -> bool:
    """Tell whether origin is this request's own scheme and host (ws pairs with http)."""
    parts = urlsplit(origin)
    own = "https" if request.scheme in ("https", "wss") else "http"
    return parts.scheme == own and parts.netloc == request.host

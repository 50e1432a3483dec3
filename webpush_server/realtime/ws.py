"""GET /ws: the live channel of a logged-in tab, as a WebSocket."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from flask import Blueprint, current_app, request
from flask_login import current_user

from ..extensions import db, sock
from ..metrics import LIVE_CONNECTIONS
from ..notifications import services
from . import broker as live
from . import replay_after, slots

log = logging.getLogger(__name__)
bp = Blueprint("realtime_ws", __name__)

# Close code for "too many live connections" (4000-4999 is for applications; 4429 echoes
# HTTP 429). live.js reads it and falls back to polling instead of retrying.
CLOSE_TOO_MANY = 4429


def _after_id() -> int | None:
    """Return the newest id the tab has (?after=), or None for a tab that wants no replay."""
    # guard_websocket refused a bad one before the upgrade.
    return replay_after(request.args.get("after", ""))


@sock.route("/ws", bp=bp)
def live_socket(ws) -> None:
    """Forward the user's notifications and unread count; take visibility reports.

    Refusals (not logged in, another origin) happen in realtime.guard_websocket, before the
    upgrade. Heartbeats are WebSocket pings every LIVE_PING_SECONDS (SOCK_SERVER_OPTIONS):
    a client that misses a pong is closed, and its presence lapses.
    """
    user_id = current_user.id
    hub = live.broker()
    # The slot is taken after the upgrade: only an open socket can carry the 4429 close code.
    slot = uuid.uuid4().hex
    if not slots.acquire(user_id, slot):
        db.session.remove()
        ws.close(reason=CLOSE_TOO_MANY, message="Too many live connections.")
        return
    try:
        _serve(ws, user_id, hub, slot)
    finally:
        slots.release(user_id, slot)


def _serve(ws, user_id: int, hub: live.Broker, slot: str) -> None:
    """Run one socket until it closes (its slot is held by the caller)."""
    # ws.event is the socket's own wake-up (set on every incoming frame and on close); the
    # broker sets it too, so one thread waits for both directions without polling.
    listener = live.Listener(user_id, ws.event)
    hub.register(listener)
    visible = False
    open_sockets = LIVE_CONNECTIONS.labels(transport="websocket")
    open_sockets.inc()
    try:
        if not hub.wait_ready(current_app.config["LIVE_READY_TIMEOUT_SECONDS"]):
            log.warning("live subscriber not ready; this tab relies on its catch-up")
        after = _after_id()
        missed = services.list_since(user_id, after) if after is not None else []
        replayed = {row.id for row in missed}
        hello: list[dict[str, Any]] = [
            {"type": "notification", "notification": row.to_json()} for row in missed
        ]
        hello.append({"type": "unread_count", "count": services.unread_count(user_id)})
        # The socket may stay open for hours: give the database connection back now.
        db.session.remove()
        for message in hello:
            ws.send(json.dumps(message))

        ping = current_app.config["LIVE_PING_SECONDS"]
        refresh_every = current_app.config["LIVE_PRESENCE_SECONDS"] / 2
        slot_every = current_app.config["LIVE_SLOT_SECONDS"] / 3
        refreshed = slot_refreshed = time.monotonic()
        while ws.connected:
            ws.event.wait(timeout=ping)
            ws.event.clear()
            while (text := ws.receive(timeout=0)) is not None:
                state = _visibility(text)
                if state is not None and state != visible:
                    visible = state
                    _set_visible(user_id, listener.id, visible)
                    refreshed = time.monotonic()
            for message in listener.take():
                note = message.get("notification")
                if note is not None and note.get("id") in replayed:
                    message = {k: v for k, v in message.items() if k != "notification"}
                for out in live.to_client(message):
                    ws.send(json.dumps(out))
            if visible and time.monotonic() - refreshed >= refresh_every:
                _set_visible(user_id, listener.id, True)
                refreshed = time.monotonic()
            if time.monotonic() - slot_refreshed >= slot_every:
                slots.refresh(user_id, slot)
                slot_refreshed = time.monotonic()
    finally:
        open_sockets.dec()
        hub.unregister(listener)
        if visible:
            _set_visible(user_id, listener.id, False)


def _visibility(text: str | bytes) -> bool | None:
    """Return the visibility a client message reports, or None for anything else."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        # A frame of 4 KiB can still nest 2,000 deep, past json's recursion limit.
        return None
    if isinstance(message, dict) and message.get("type") == "visibility":
        return bool(message.get("visible"))
    return None


def _set_visible(user_id: int, listener_id: str, visible: bool) -> None:
    try:
        live.set_visible(user_id, listener_id, visible)
    except Exception:
        # Without presence the user gets Web Push as well: noisy, but nothing is lost.
        log.warning("could not record presence", exc_info=True)

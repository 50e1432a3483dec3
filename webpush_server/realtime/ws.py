"""GET /ws: the live channel of a logged-in tab, as a WebSocket (carried by realtime.asgi)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from . import handshake, replay_after

bp = Blueprint("realtime_ws", __name__)

# Close code for "too many live connections" (4000-4999 is for applications; 4429 echoes
# HTTP 429). live.js reads it and falls back to polling instead of retrying.
CLOSE_TOO_MANY = 4429
# The scope extension under which our uvicorn protocol (ops/ws_protocol.py) offers to write
# a tab's text frames at once: send_texts(texts) is False when it cannot (a paused or closing
# socket), and the app sends them the ASGI way.
SEND_TEXTS = "webpush.send_texts"


# websocket=True: werkzeug routes an Upgrade: websocket request only to such a rule.
@bp.get("/ws", websocket=True)
def live_socket():
    """Open a tab's WebSocket: its slot, its subscription and the hello it starts with.

    Refusals (not logged in, another origin, a bad ?after=) happen in
    realtime.guard_websocket, before this; a user over the connection limit gets the socket
    closed with CLOSE_TOO_MANY (only an open socket can carry a close code).
    """
    found = handshake.opening()
    if found is None:
        return handshake.not_served_here()
    handshake.begin(found, replay_after(request.args.get("after", "")))
    return Response(status=200)

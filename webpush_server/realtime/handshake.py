"""The Flask half of opening a live connection: who may, the slot, the subscription, the hello.

/ws and /api/notifications/stream are Flask views like any other, so every before_request
guard applies to them (the session, rate limits, the Origin check). The async server
(realtime.asgi) runs the view in a thread with an Opening in the environ; the view fills it in
and returns an empty answer, and the server then keeps the connection open on its event loop.
A refusal is the view's own error response, which the server sends as it is.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from flask import current_app, request
from flask_login import current_user

from ..errors import error_response
from ..notifications import services
from . import slots
from .hub import Hub, Listener

log = logging.getLogger(__name__)

# The environ key under which the async server passes its Opening to the view.
ENVIRON_KEY = "webpush.live"


@dataclass
class Opening:
    """What the async server hands the view, and what the view hands back."""

    hub: Hub
    loop: asyncio.AbstractEventLoop
    # Set by the view: the tab, or None when the user already holds every slot.
    listener: Listener | None = None
    refused: bool = False
    hello: list[dict] = field(default_factory=list)  # messages as tabs get them


def opening() -> Opening | None:
    """Return the async server's Opening for this request, None when no such server runs it."""
    return request.environ.get(ENVIRON_KEY)


def not_served_here():
    """The answer where no async server carries the connection (a plain WSGI server)."""
    return error_response(
        426, "upgrade_required", "Live connections need the web process's async server."
    )


def begin(found: Opening, after: int | None) -> bool:
    """Take a slot, subscribe, and build the hello for the logged-in user's new tab.

    Returns False (nothing held) when the user already holds LIVE_MAX_CONNECTIONS_PER_USER.
    after: the newest notification id the tab has, or None for no replay.
    """
    user_id = current_user.id
    listener = Listener(user_id)
    if not slots.acquire(user_id, listener.id):
        found.refused = True
        return False
    try:
        # Subscribed before the replay is read: nothing committed after the read is missed.
        attached = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(
                found.hub.attach(listener), current_app.config["LIVE_READY_TIMEOUT_SECONDS"]
            ),
            found.loop,
        )
        try:
            attached.result()
        except TimeoutError:
            log.warning("live subscriber not ready; this tab relies on its catch-up")
        missed = services.list_since(user_id, after) if after is not None else []
        listener.replayed = {row.id for row in missed}
        found.hello = [{"type": "notification", "notification": row.to_json()} for row in missed]
        found.hello.append({"type": "unread_count", "count": services.unread_count(user_id)})
    except BaseException:
        found.loop.call_soon_threadsafe(found.hub.detach, listener)
        slots.release(user_id, listener.id)
        raise
    found.listener = listener
    return True

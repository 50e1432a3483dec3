"""The notification as every channel carries it: the inbox, the live channel and Web Push.

One function writes the JSON shape from plain values; the inbox and the live toasts
(static/js/inbox.js, live.js) read it. The push message wraps the same fields in the
declarative Web Push shape (`web_push: 8030`, CONTRACT "Push"), which Safari shows by itself
and the service worker (static/service-worker.js) reads.
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlsplit

from ..push.crypto import MAX_PLAINTEXT
from ..timeutil import isoformat


def notification_json(
    *,
    id: int,
    kind: str,
    title: str,
    body: str,
    url: str,
    tag: str,
    created_at: datetime,
    read_at: datetime | None = None,
    read_state: bool = True,
    data: dict | None = None,
) -> dict:
    """Return the notification's JSON: the one shape the inbox, live channel and push use.

    Args:
        read_state: False leaves out `read_at`, for a push message: the device shows it
            as new, and whether it was read elsewhere is the inbox's business.
        data: the sender's own JSON object (service API notifications), left out when None.
    """
    message = {
        "id": id,
        "kind": kind,
        "title": title,
        "body": body,
        "url": url,
        "tag": tag,
        "created_at": isoformat(created_at),
    }
    if read_state:
        message["read_at"] = isoformat(read_at)
    if data is not None:
        message["data"] = data
    return message


GENERIC_TITLE = "New notification"
DECLARATIVE = 8030  # the `web_push` member of a declarative Web Push message


def push_payload(
    *,
    id: int,
    kind: str,
    title: str,
    body: str,
    url: str,
    tag: str,
    created_at: datetime,
    navigate: str,
    origin: str,
    icon: str | None = None,
    lang: str | None = None,
    app_badge: int | None = None,
    tickle: bool = False,
    data: dict | None = None,
) -> tuple[bytes, bool]:
    """Return the declarative Web Push message (`web_push: 8030`) and whether it is a tickle.

    Safari shows the message itself; Chrome and Firefox hand it to the service worker, which
    reads the same JSON. A message that fails validation (no title, `navigate` off our
    origin, more than one record) goes as a tickle: a generic title and the id, and the
    service worker fetches the rest from the inbox API. tickle=True asks for one outright
    (the push service answered 413 to the full one).

    Args:
        navigate: the absolute URL a click opens: `/n/<id>` on PUBLIC_URL, which counts it.
        origin: our origin (from PUBLIC_URL); navigate must be on it.
        app_badge: the recipient's unread count, for the app icon's badge.
    """
    if not tickle:
        notification: dict = {"title": title, "body": body, "navigate": navigate, "tag": tag}
        if icon:
            notification["icon"] = icon
        if lang:
            notification["lang"] = lang
        notification["mutable"] = True
        notification["data"] = {"id": id, "kind": kind, "created_at": isoformat(created_at)}
        notification["data"]["url"] = url
        if data is not None:
            notification["data"]["data"] = data
        message: dict = {"web_push": DECLARATIVE, "notification": notification}
        if app_badge is not None:
            message["app_badge"] = app_badge
        encoded = _encode(message)
        if message_problem(message, len(encoded), origin) is None:
            return encoded, False
    if not is_on_origin(navigate, origin):
        raise ValueError(f"navigate {navigate!r} is not on {origin}")
    small = {
        "web_push": DECLARATIVE,
        "notification": {
            "title": GENERIC_TITLE,
            "navigate": navigate,
            "mutable": True,
            "data": {"id": id, "kind": kind, "tickle": True},
        },
    }
    return _encode(small), True


def message_problem(message: dict, size: int, origin: str) -> str | None:
    """Say why a declarative message must not go as it is, or None when it may.

    The rules of WebKit's declarative Web Push, and of one aes128gcm record.
    """
    notification = message.get("notification") or {}
    if message.get("web_push") != DECLARATIVE:
        return "web_push must be 8030"
    if not isinstance(notification.get("title"), str) or not notification["title"].strip():
        return "title is empty"
    if not is_on_origin(notification.get("navigate"), origin):
        return "navigate is not an absolute URL on our origin"
    if size > MAX_PLAINTEXT:
        return f"{size} bytes is more than {MAX_PLAINTEXT}"
    return None


def is_on_origin(url: object, origin: str) -> bool:
    """Tell whether url is an absolute http(s) URL on origin (scheme, host and port)."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        ours = urlsplit(origin)
        return (
            parts.scheme in ("http", "https")
            and (parts.scheme, parts.hostname, parts.port)
            == (ours.scheme, ours.hostname, ours.port)
            and not parts.username
            and not parts.password
        )
    except ValueError:
        return False


def _encode(message: dict) -> bytes:
    # UTF-8, not \u escapes, and no spaces: more of the text fits in one record.
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()

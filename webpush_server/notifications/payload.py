"""The notification as every channel carries it: the inbox, the live channel and Web Push.

One function writes the JSON shape from plain values. The inbox and the live toasts
(static/js/inbox.js, live.js) and the service worker (static/service-worker.js) all read it.
"""

from __future__ import annotations

import json
from datetime import datetime

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


def push_payload(
    *,
    id: int,
    kind: str,
    title: str,
    body: str,
    url: str,
    tag: str,
    created_at: datetime,
    tickle: bool = False,
    data: dict | None = None,
) -> tuple[bytes, bool]:
    """Return the Web Push message and whether it is a tickle (the full one would not fit).

    A tickle carries the id and kind only; the service worker fetches the rest from the inbox
    API. tickle=True asks for one outright (the push service answered 413 to the full one).
    """
    if not tickle:
        full = notification_json(
            id=id,
            kind=kind,
            title=title,
            body=body,
            url=url,
            tag=tag,
            created_at=created_at,
            read_state=False,
            data=data,
        )
        encoded = json.dumps(full, ensure_ascii=False, separators=(",", ":")).encode()
        if len(encoded) <= MAX_PLAINTEXT:
            return encoded, False
    small = {"id": id, "kind": kind, "tickle": True}
    return json.dumps(small, separators=(",", ":")).encode(), True

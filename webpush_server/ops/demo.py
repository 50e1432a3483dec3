"""A day of delivery history for `flask seed-demo`, so /admin/ is not empty on `make run`.

Devices of the demo readers at the real push services, and notifications over the last 24
hours with deliveries and attempts as a day of traffic leaves them: mostly sent, some gone,
retried, refused for a bad key, a few dead; send times per push service; shown, clicked and
closed receipts. A seeded random source makes every run write the same rows (the seed-demo
test counts them); the first notification's dedupe key tells a second run it is done.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from ..extensions import db
from ..notifications.models import Delivery, DeliveryAttempt, Notification
from ..push.models import Subscription
from ..timeutil import utcnow

KEY = "demo-history"
NOTIFICATIONS = 240
_CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/140.0 Mobile Safari/537.36"
)
_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
_SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1"
)
_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/140.0 Safari/537.36 Edg/140.0"
)
# (endpoint origin, user agent, median send ms) of the demo readers' devices.
DEVICES = (
    ("https://fcm.googleapis.com", _CHROME_ANDROID, 70),
    ("https://updates.push.services.mozilla.com", _FIREFOX, 95),
    ("https://web.push.apple.com", _SAFARI_IOS, 120),
    ("https://wns2-par02p.notify.windows.com", _EDGE, 150),
)
KINDS = (
    ("book_available", "Your book is ready", 0.30),
    ("hold_expiring", "Pick up your book by tomorrow", 0.15),
    ("campaign_succeeded", "A campaign you backed met its goal", 0.15),
    ("campaign_deadline_soon", "A campaign you follow ends soon", 0.20),
    ("coupon_expiring", "Your coupon expires tomorrow", 0.15),
    ("test", "Test notification", 0.05),
)


def seed_history(reader_ids: list[int], now: datetime | None = None) -> int:
    """Write the day of history unless it is there; return the notifications written."""
    exists = select(Notification.id).where(Notification.dedupe_key == f"{KEY}:0")
    if not reader_ids or db.session.scalar(exists) is not None:
        return 0
    now = now or utcnow()
    rng = random.Random(20261201)
    devices = _devices(reader_ids, rng)
    notifications: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    attempts: list[dict[str, Any]] = []
    for index in range(NOTIFICATIONS):
        created = now - timedelta(seconds=_daytime_offset(rng))
        kind, title = _kind(rng)
        user_id = reader_ids[index % len(reader_ids)]
        notifications.append(
            {
                "user_id": user_id,
                "kind": kind,
                "title": title,
                "body": "Demo history: this notification was written by seed-demo.",
                "url": "/notifications",
                "tag": f"{KEY}-{index}",
                "urgency": "normal",
                "topic": None,
                "expires_at": created + timedelta(days=1),
                "dedupe_key": f"{KEY}:{index}",
                "created_at": created,
            }
        )
    ids = db.session.execute(
        insert(Notification.__table__).returning(Notification.id, Notification.dedupe_key),
        notifications,
    ).all()
    by_key = {row.dedupe_key: row.id for row in ids}
    receipts: list[tuple[int, datetime, tuple[bool, bool, bool]]] = []
    for note in notifications:
        notification_id = by_key[note["dedupe_key"]]
        sent_any = False
        for device_id, origin, median in devices[note["user_id"]]:
            status, tries, sent_at = _outcome(rng, note["created_at"], now, median)
            deliveries.append(
                {
                    "notification_id": notification_id,
                    "subscription_id": device_id,
                    "status": status,
                    "attempts": len(tries),
                    "reclaims": 2 if status == "dead" else 0,
                    "tickle": False,
                    "next_attempt_at": now + timedelta(minutes=4) if status == "pending" else None,
                    "last_status_code": tries[-1][2] if tries else None,
                    "last_error": _last_error(status, tries),
                    "created_at": note["created_at"],
                    "sent_at": sent_at,
                    "_tries": [(at, outcome, code, ms, origin) for at, outcome, code, ms in tries],
                }
            )
            sent_any = sent_any or status == "sent"
        if sent_any:
            receipts.append((notification_id, note["created_at"], _receipt(rng)))
    tries_of = [row.pop("_tries") for row in deliveries]
    delivery_ids = db.session.execute(
        insert(Delivery.__table__).returning(Delivery.id), deliveries
    ).scalars()
    for delivery_id, tries in zip(delivery_ids, tries_of, strict=True):
        for number, (at, outcome, code, ms, origin) in enumerate(tries, 1):
            attempts.append(
                {
                    "delivery_id": delivery_id,
                    "attempt": number,
                    "outcome": outcome,
                    "status_code": code,
                    "error": _error(outcome, code),
                    "at": at,
                    "origin": origin,
                    "duration_ms": ms,
                }
            )
    if attempts:
        db.session.execute(insert(DeliveryAttempt.__table__), attempts)
    for notification_id, created, (shown, clicked, closed) in receipts:
        row = db.session.get(Notification, notification_id)
        assert row is not None
        row.shown_at = created + timedelta(seconds=2) if shown else None
        row.clicked_at = created + timedelta(minutes=3) if clicked else None
        row.read_at = row.clicked_at
        row.closed_at = created + timedelta(minutes=1) if closed else None
    return len(notifications)


def _devices(reader_ids: list[int], rng: random.Random) -> dict[int, list[tuple[int, str, int]]]:
    """Give each reader one or two devices; return (id, origin, median ms) per reader."""
    found: dict[int, list[tuple[int, str, int]]] = {}
    for position, user_id in enumerate(reader_ids):
        chosen = [DEVICES[position % len(DEVICES)]]
        if position % 2 == 0:
            chosen.append(DEVICES[(position + 1) % len(DEVICES)])
        found[user_id] = []
        for number, (origin, agent, median) in enumerate(chosen):
            device = Subscription(
                user_id=user_id,
                endpoint=f"{origin}/demo/{user_id}-{number}-{rng.getrandbits(48):012x}",
                p256dh="BDemoKeyNotUsableForEncryption",
                auth="demo-auth",
                user_agent=agent,
            )
            db.session.add(device)
            db.session.flush()
            found[user_id].append((device.id, origin, median))
    return found


def _daytime_offset(rng: random.Random) -> float:
    """Seconds before now, over 24 h, busier in the (local) afternoon and evening."""
    while True:
        seconds = rng.uniform(60, 86400 - 60)
        hour = (seconds / 3600) % 24
        if rng.random() < 0.35 + 0.65 * (1 + math.cos((hour - 6) / 24 * 2 * math.pi)) / 2:
            return seconds


def _kind(rng: random.Random) -> tuple[str, str]:
    pick = rng.random()
    for kind, title, share in KINDS:
        pick -= share
        if pick <= 0:
            return kind, title
    return KINDS[-1][0], KINDS[-1][1]


def _ms(rng: random.Random, median: int) -> float:
    return round(median * math.exp(rng.gauss(0, 0.45)), 1)


Try = tuple[datetime, str, int | None, float | None]  # at, outcome, status code, ms


def _outcome(
    rng: random.Random, created: datetime, now: datetime, median: int
) -> tuple[str, list[Try], datetime | None]:
    """Return (status, [(at, outcome, status code, ms)], sent_at) of one delivery."""
    at = created + timedelta(seconds=rng.uniform(0.3, 3))
    pick = rng.random()
    if pick < 0.82:
        return "sent", [(at, "sent", 201, _ms(rng, median))], at
    if pick < 0.88:  # a 503, then sent on the retry
        retry = at + timedelta(seconds=rng.uniform(5, 60))
        retried: list[Try] = [
            (at, "rate_limited", 503, _ms(rng, median)),
            (retry, "sent", 201, _ms(rng, median)),
        ]
        return "sent", retried, retry
    if pick < 0.93:
        return "gone", [(at, "gone", 410, _ms(rng, median))], None
    if pick < 0.95:
        return "failed", [(at, "config_error", 403, _ms(rng, median))], None
    if pick < 0.97:  # timeouts until the attempts ran out
        tries: list[Try] = [
            (at + timedelta(minutes=5 * n), "transient", None, None) for n in range(5)
        ]
        return "failed", [t for t in tries if t[0] < now] or tries[:1], None
    if pick < 0.985 and now - created < timedelta(hours=1):
        return "pending", [(at, "transient", 502, _ms(rng, median))], None
    if pick < 0.985:
        return "sent", [(at, "sent", 201, _ms(rng, median))], at
    return "dead", [(at, "transient", None, None)], None


def _error(outcome: str, code: int | None) -> str | None:
    return {
        "rate_limited": "HTTP 503: Service Unavailable",
        "gone": "HTTP 410: push subscription has unsubscribed or expired",
        "config_error": "HTTP 403: BadJwtToken",
        "transient": "timeout" if code is None else f"HTTP {code}: Bad Gateway",
    }.get(outcome)


def _last_error(status: str, tries: list) -> str | None:
    if status == "dead":
        return "worker lost the claim 2 times; last error: timeout"
    if status == "sent" or not tries:
        return None
    return _error(tries[-1][1], tries[-1][2])


def _receipt(rng: random.Random) -> tuple[bool, bool, bool]:
    """Return (shown, clicked, closed) of a notification some device was sent."""
    shown = rng.random() < 0.9
    clicked = shown and rng.random() < 0.3
    closed = shown and not clicked and rng.random() < 0.4
    return shown, clicked, closed

"""E-mail and SMS beside Web Push: senders, preferences, unsubscribe, the mail viewer.

Each e-mail or SMS is a delivery row like a push (channel, address) and goes through the
same claim, retry, sweep and dead state; jobs/delivery.py hands the non-push rows of a batch
to send() here and writes what it returns with the same outcome policy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from ..jobs.claim import Claimed
    from ..push.sender import PushResult

DEFAULTS = {
    # smtp://user:pass@host:port or smtps://…; ?starttls=1 upgrades a plain connection.
    "MAIL_URL": None,
    "MAIL_FROM": "webpush-server <notices@webpush-server.dev>",
    "MAIL_TIMEOUT_SECONDS": 10.0,
    # The absolute base of links built outside a request (e-mails, List-Unsubscribe).
    "PUBLIC_URL": None,
    # A push-first kind's e-mail goes this long after the push, if that was not sent.
    "FALLBACK_AFTER_SECONDS": 600,
    # Permanent refusals in a row after which an address gets no more e-mail.
    "MAIL_BOUNCE_LIMIT": 3,
    # `make run`'s embedded SMTP server keeps messages here (a Maildir) for /admin/mail.
    "MAIL_KEEP_DIR": None,
    "PASSWORD_RESET_MINUTES": 30,
    # SMS through the Twilio Messages API (a local stand-in in tests: TWILIO_API_BASE).
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "TWILIO_FROM": None,
    "TWILIO_API_BASE": "https://api.twilio.com",
    # Phone numbers without a country code are read as this region's.
    "PHONE_REGION": "KR",
    "PHONE_CODE_MINUTES": 10,
    "PHONE_CODE_TRIES": 5,
}
_ENVIRONMENT = (
    "MAIL_URL",
    "MAIL_FROM",
    "PUBLIC_URL",
    "MAIL_KEEP_DIR",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM",
    "TWILIO_API_BASE",
)


def init_app(app: Flask) -> None:
    """Add the preference API and page, unsubscribe links and the admin mail viewer."""
    from ..extensions import csrf
    from ..jobs.schedule import register
    from . import digest, models, views  # noqa: F401 - models: the tables

    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    for name in _ENVIRONMENT:
        if os.environ.get(name):
            app.config[name] = os.environ[name]
    if os.environ.get("FALLBACK_AFTER_SECONDS"):
        app.config["FALLBACK_AFTER_SECONDS"] = int(os.environ["FALLBACK_AFTER_SECONDS"])
    # RFC 8058: the mail provider posts the one-click unsubscribe without our cookies or
    # token; the signed token in the URL is what authorises it.
    csrf.exempt(views.one_click_unsubscribe)
    app.register_blueprint(views.bp)
    register(app, *digest.scheduled())


def send(items: Sequence[Claimed], now: datetime) -> list[PushResult]:
    """Send claimed e-mail and SMS deliveries; return one result per item."""
    from .dispatch import send as dispatch_send

    return dispatch_send(items, now)


def after_write(items: Sequence[Claimed], results: Sequence[PushResult]) -> None:
    """Book what the answers say about addresses (bounces), once the outcomes are written."""
    from .dispatch import after_write as dispatch_after_write

    dispatch_after_write(items, results)

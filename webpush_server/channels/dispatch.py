"""Route a batch's e-mail and SMS deliveries to their sender; book bounces afterwards."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from flask import current_app
from sqlalchemy import select, update

from ..extensions import db
from ..i18n.locale import current_language
from ..jobs.claim import Claimed
from ..notifications.models import Delivery
from ..push.policy import Outcome
from ..push.sender import PushResult
from ..timeutil import utcnow
from . import email, sms
from .models import Preference


def send(items: Sequence[Claimed], now: datetime) -> list[PushResult]:
    """Send items by their channel; a fallback whose push went out is skipped instead."""
    results: list[PushResult] = []
    pushed = _pushed({item.notification_id for item in items if item.fallback})
    mail: list[Claimed] = []
    texts: list[Claimed] = []
    for item in items:
        if item.fallback and item.notification_id in pushed:
            results.append(PushResult(item.id, Outcome.SKIPPED, error="push was delivered"))
        elif item.channel == "email":
            mail.append(item)
        else:
            texts.append(item)
    if mail:
        results.extend(email.send_batch(mail, now))
    if texts:
        results.extend(sms.send_batch(texts, now))
    return results


def _pushed(notification_ids: set[int]) -> set[int]:
    """Return the notifications among these with a push delivery sent."""
    if not notification_ids:
        return set()
    found = set(
        db.session.scalars(
            select(Delivery.notification_id).where(
                Delivery.notification_id.in_(sorted(notification_ids)),
                Delivery.channel == "push",
                Delivery.status == "sent",
            )
        )
    )
    db.session.rollback()
    return found


def after_write(items: Sequence[Claimed], results: Sequence[PushResult]) -> None:
    """Count permanent refusals per address; at MAIL_BOUNCE_LIMIT in a row it is bouncing.

    A number Twilio calls invalid (or not a mobile) is marked invalid: no more SMS to it.
    """
    by_id = {item.id: item for item in items}
    bounced: set[int] = set()
    delivered: set[int] = set()
    invalid = {
        (by_id[r.key].user_id, by_id[r.key].address)
        for r in results
        if by_id[r.key].channel == "sms" and r.outcome is Outcome.BOUNCED
    }
    if invalid:
        for user_id, number in invalid:
            db.session.execute(
                update(Preference)
                .where(Preference.user_id == user_id, Preference.phone_number == number)
                .values(phone_invalid_at=utcnow(), phone_verified_at=None)
            )
        db.session.commit()
    for result in results:
        item = by_id[result.key]
        if item.channel != "email" or item.user_id is None:
            continue
        if result.outcome is Outcome.BOUNCED:
            bounced.add(item.user_id)
        elif result.outcome is Outcome.SENT:
            delivered.add(item.user_id)
    if not bounced and not delivered:
        return
    limit = current_app.config["MAIL_BOUNCE_LIMIT"]
    now = utcnow()
    rows = {
        row.user_id: row
        for row in db.session.scalars(
            select(Preference).where(Preference.user_id.in_(sorted(bounced | delivered)))
        )
    }
    for user_id in sorted(bounced):
        row = rows.get(user_id)
        if row is None:
            row = Preference(user_id=user_id, language=current_language(), digest_hour=8, kinds={})
            row.email_bounces = 0
            db.session.add(row)
        row.email_bounces = (row.email_bounces or 0) + 1
        if row.email_bounces >= limit and row.email_bouncing_at is None:
            row.email_bouncing_at = now
    for user_id in delivered - bounced:
        row = rows.get(user_id)
        if row is not None and row.email_bounces:
            row.email_bounces = 0
    db.session.commit()

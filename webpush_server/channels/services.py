"""Channel services the views call: unsubscribe by token, labels and zones for the page."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext, lazy_gettext
from sqlalchemy import select, update

from ..auth.models import User
from ..errors import Conflict, Invalid, Refused
from ..extensions import db
from ..i18n.locale import current_language
from ..notifications.kinds import KINDS
from ..notifications.models import Delivery, Notification
from ..notifications.outbox import remember_for_enqueue
from ..timeutil import utcnow
from . import preferences, sms
from .models import Preference
from .sms import PHONE_CODE_KIND
from .tokens import read_unsubscribe_token

# The zones the page offers first; any IANA zone is accepted through the API.
COMMON_ZONES = (
    "Asia/Seoul",
    "Asia/Tokyo",
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
)


# E-mail sent only because someone asked for it just now: its one-click link (every e-mail
# carries one) changes nothing, so an unsubscribe can never stop password resets.
KEPT_ON_REQUEST = {
    "password_reset": lazy_gettext(
        "Password reset e-mails are sent only when someone asks for a reset link for your "
        "account, so they cannot be turned off and nothing was changed. If you did not ask "
        "for one, ignore the e-mail: your password stays as it is."
    ),
}


def kind_labels() -> dict[str, str]:
    """Return a readable name per kind for the preferences page, in the request's language."""
    names = {
        "book_available": gettext("Book available"),
        "hold_expiring": gettext("Hold expiring"),
        "hold_expired": gettext("Hold expired"),
        "loan_due_soon": gettext("Loan due soon"),
        "loan_overdue": gettext("Loan overdue"),
        "loan_renewed": gettext("Loan renewed"),
        "hold_position": gettext("Hold position"),
        "hold_cancelled": gettext("Hold cancelled"),
        "hold_resumed": gettext("Hold resumed"),
        "campaign_succeeded": gettext("Campaign succeeded"),
        "campaign_failed": gettext("Campaign failed"),
        "campaign_deadline_soon": gettext("Campaign deadline soon"),
        "campaign_closed": gettext("Campaign closed"),
        "coupon_expiring": gettext("Coupon expiring"),
        "announcement": gettext("Announcement"),
        "password_reset": gettext("Password reset"),
        "digest": gettext("Digest"),
        "test": gettext("Test"),
    }
    return {name: names.get(name, name.replace("_", " ").capitalize()) for name in KINDS}


def common_zones() -> tuple[str, ...]:
    """Return the time zones the page lists."""
    return COMMON_ZONES


def read_unsubscribe(token: str) -> tuple[User, str] | None:
    """Return the user and kind of a genuine unsubscribe token whose user still exists."""
    found = read_unsubscribe_token(token)
    if found is None:
        return None
    user = db.session.get(User, found[0])
    if user is None or found[1] not in KINDS:
        return None
    return user, found[1]


def unsubscribe(user: User, kind: str) -> None:
    """Turn this kind's e-mail off for user (a kind that must reach them keeps a channel)."""
    if kind in KEPT_ON_REQUEST:
        return  # the page says why (KEPT_ON_REQUEST): a reset must always reach its asker
    row = db.session.get(Preference, user.id)
    if kind == "digest":
        # The digest's own link ends the digest: its kinds go back to one e-mail each.
        digested = [
            k for k in preferences.matrix_kinds() if preferences.kind_choice(row, k)["digest"]
        ]
        if digested:
            preferences.update_preferences(
                user, {"kinds": {k: {"digest": False} for k in digested}}
            )
        return
    choice = preferences.kind_choice(row, kind)
    if not choice["email"]:
        return  # already off: the second click of a one-click link changes nothing
    if kind in preferences.REQUIRED and not (choice["push"] or choice["sms"]):
        raise Conflict(
            f"kinds.{kind}.email",
            gettext(
                "E-mail is the only channel left for this kind. %(why)s",
                why=preferences.REQUIRED[kind],
            ),
        )
    preferences.update_preferences(user, {"kinds": {kind: {"email": False}}})


def form_to_update(form: Mapping[str, str]) -> dict[str, Any]:
    """Turn the settings form into a PUT /api/preferences body (every cell of the matrix)."""
    kinds: dict[str, dict[str, Any]] = {}
    for kind in preferences.matrix_kinds():
        cells: dict[str, Any] = {
            channel: form.get(f"{kind}.{channel}") == "on"
            for channel in ("push", "email", "digest")
        }
        if f"{kind}.sms" in form:  # disabled (no verified phone): not sent, left alone
            cells["sms"] = form.get(f"{kind}.sms") == "on"
        if form.get(f"{kind}.route"):
            cells["route"] = form[f"{kind}.route"]
        if form.get(f"{kind}.days_before"):
            raw = form[f"{kind}.days_before"]
            cells["days_before"] = int(raw) if raw.isascii() and raw.isdigit() else raw
        kinds[kind] = cells
    update: dict[str, Any] = {"kinds": kinds}
    if form.get("language"):
        update["language"] = form["language"]
    if form.get("timezone"):
        update["timezone"] = form["timezone"]
    start, end = form.get("quiet_start", ""), form.get("quiet_end", "")
    update["quiet_hours"] = {"start": start, "end": end} if start or end else None
    raw_hour = form.get("digest_hour", "")
    if raw_hour:
        update["digest_hour"] = (
            int(raw_hour) if raw_hour.isascii() and raw_hour.isdigit() else raw_hour
        )
    return update


def keep_typed(prefs: dict[str, Any], typed: Mapping[str, Any], form: Mapping[str, str]) -> None:
    """Overlay a refused form's values on prefs, so the page shows what was typed."""
    for kind, cells in (typed.get("kinds") or {}).items():
        if kind in prefs["kinds"]:
            prefs["kinds"][kind] = {**prefs["kinds"][kind], **cells}
    if "timezone" in form:
        prefs["timezone"] = form["timezone"]
    if "digest_hour" in form:
        prefs["digest_hour"] = form["digest_hour"]
    start, end = form.get("quiet_start", ""), form.get("quiet_end", "")
    prefs["quiet_hours"] = {"start": start, "end": end} if start or end else None
    if form.get("language"):
        prefs["typed_language"] = form["language"]


def errors_by_input(error: Refused) -> tuple[dict[str, str], list[str]]:
    """Return the refusal's messages keyed by the settings form's input ids, and the rest."""
    pairs: list[tuple[str | None, str]] = (
        [(item["field"], str(item["message"] or "")) for item in error.fields]
        if error.fields
        else [(error.field, error.message)]
    )
    by_input: dict[str, str] = {}
    others: list[str] = []
    for field, message in pairs:
        if not field or field.startswith("kinds") and not field.endswith(".days_before"):
            # No one input holds it (a whole kind, the matrix): said above the form.
            others.append(message)
            continue
        if field in ("quiet_hours", "quiet_hours.start"):
            key = "quiet_start"
        elif field == "quiet_hours.end":
            key = "quiet_end"
        elif field.startswith("kinds.") and field.endswith(".days_before"):
            key = field.split(".")[1] + "-days_before"
        else:
            key = field
        by_input.setdefault(key, message)
    return by_input, others


# -- phone numbers ----------------------------------------------------------------------------


def _code_hash(user_id: int, number: str, code: str) -> str:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, f"{user_id}:{number}:{code}".encode(), hashlib.sha256).hexdigest()


def set_phone(user: User, number: object) -> str:
    """Store an unverified number and text it a 6-digit code; return the E.164 number."""
    e164 = sms.normalize(number, current_app.config["PHONE_REGION"])
    if not sms.available():
        # A state of this deployment, not an outage: nothing to retry later.
        raise Conflict("number", "SMS is not available on this server.", "sms_unavailable")
    code = f"{secrets.randbelow(10**6):06d}"
    now = utcnow()
    row = db.session.get(Preference, user.id)
    if row is None:
        row = Preference(user_id=user.id, language=current_language(), digest_hour=8, kinds={})
        db.session.add(row)
    row.phone_number = e164
    row.phone_verified_at = None
    row.phone_invalid_at = None
    row.phone_code_hash = _code_hash(user.id, e164, code)
    row.phone_code_sent_at = now
    row.phone_code_tries = 0
    _queue_code(user.id, e164, code, now)
    db.session.commit()
    return e164


def _queue_code(user_id: int, number: str, code: str, now: datetime) -> None:
    """Write the code's SMS as an outbox delivery; the worker sends it after the commit.

    The request never waits on Twilio, and a refusal follows the outbox policy like any SMS.
    The notification stays out of the inbox (visible_at NULL): the code is for the phone.
    An older code's SMS still waiting is withdrawn: only the newest code works.
    """
    minutes = current_app.config["PHONE_CODE_MINUTES"]
    older = select(Notification.id).where(
        Notification.user_id == user_id, Notification.kind == PHONE_CODE_KIND
    )
    db.session.execute(
        update(Delivery)
        .where(Delivery.notification_id.in_(older), Delivery.status == "pending")
        .values(status="cancelled", next_attempt_at=None)
    )
    note = Notification(
        user_id=user_id,
        kind=PHONE_CODE_KIND,
        title="Phone number code",
        body=f"Your webpush-server code is {code}. It works for {minutes} minutes.",
        url="/settings/notifications",
        tag="phone-code",
        urgency="high",
        expires_at=now + timedelta(minutes=minutes),
        dedupe_key=f"phone-code:{user_id}:{secrets.token_hex(8)}",
        created_at=now,
        visible_at=None,
    )
    db.session.add(note)
    db.session.flush()
    delivery = Delivery(
        notification_id=note.id,
        channel="sms",
        address=number,
        status="pending",
        attempts=0,
        tickle=False,
        created_at=now,
    )
    db.session.add(delivery)
    db.session.flush()
    remember_for_enqueue([delivery.id])


def verify_phone(user: User, code: object) -> None:
    """Mark the number verified if code is the one texted to it (5 tries, 10 minutes)."""
    config = current_app.config
    row = db.session.get(Preference, user.id)
    if row is None or row.phone_number is None or row.phone_code_hash is None:
        raise Invalid("code", gettext("Add a phone number first."), "invalid_code")
    sent = row.phone_code_sent_at
    fresh = sent is not None and utcnow() - sent <= timedelta(minutes=config["PHONE_CODE_MINUTES"])
    if not fresh or row.phone_code_tries >= config["PHONE_CODE_TRIES"]:
        raise Invalid("code", gettext("This code has expired: ask for a new one."), "invalid_code")
    given = code if isinstance(code, str) else ""
    if not hmac.compare_digest(row.phone_code_hash, _code_hash(user.id, row.phone_number, given)):
        row.phone_code_tries += 1
        db.session.commit()
        raise Invalid("code", gettext("That is not the code we sent."), "invalid_code")
    row.phone_verified_at = utcnow()
    row.phone_code_hash = None
    db.session.commit()

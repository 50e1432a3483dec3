"""The service API's work: trigger, replay, schedule, cancel, report.

Every notification goes through notifications.record_notices(): the same inbox rows, outbox
deliveries and live messages as a domain event's. A request row (ApiRequest) remembers who
asked, the body's hash and the first answer, so a retried request gets that answer again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update

from ..auth.models import User
from ..auth.services import normalize_email
from ..channels import quiet as quiet_hours
from ..channels.route import available_channels
from ..database import (
    Raced,
    insert_ignoring_conflicts,
    insert_rows,
    keyset_ids,
    one_of,
    retry_on_conflict,
    rows_changed,
)
from ..errors import Forbidden, Invalid, NotFound, Unprocessable
from ..extensions import db
from ..jobs.context import app_context
from ..jobs.queues import queue
from ..notifications.kinds import KINDS
from ..notifications.models import Delivery, Notification
from ..notifications.outbox import remember_for_enqueue, remember_for_publish
from ..notifications.record import (
    Notice,
    live_messages,
    live_only,
    record_notices,
    routing_for,
)
from ..timeutil import isoformat, utcnow
from ..util import chunked
from .models import ApiRequest, ApiRequestNotification
from .schemas import MAX_TTL_SECONDS, TriggerRequest

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_IDEMPOTENCY_KEY = 255
RELEASE_JOB = "webpush_server.service_api.services.release_due"
# Delivery states as the status report counts them.
COUNTED_AS = {
    "pending": "pending",
    "sending": "pending",
    "sent": "sent",
    "failed": "failed",
    "gone": "failed",
    "expired": "failed",
    "dead": "failed",
    "skipped": "skipped",
    "cancelled": "cancelled",
}


def unavailable_channels() -> tuple[str, ...]:
    """Return the channels this deployment cannot send on (no mail server, no SMS provider)."""
    available = available_channels()
    return tuple(channel for channel in ("email", "sms") if channel not in available)


@dataclass(frozen=True)
class Caller:
    """The principal of a service API request: an API key, as plain values."""

    key_id: int
    site: str


def body_hash(raw: bytes) -> str:
    """Return the hash of a JSON body's meaning: key order and spacing do not count."""
    canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_idempotency_key(value: str | None) -> str | None:
    """Return the Idempotency-Key header's value, or raise Invalid."""
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY or not (value.isascii() and value.isprintable()):
        raise Invalid(
            "Idempotency-Key", "Idempotency-Key must be 1 to 255 printable ASCII characters."
        )
    return value


def check_kind(caller: Caller, kind: str) -> None:
    """Refuse a kind this key may not send: unknown 400, another site's (or `test`) 403."""
    known = KINDS.get(kind)
    if known is None:
        raise Invalid("kind", f"kind: {kind!r} is not a notification kind.")
    if kind == "announcement":
        return
    if known.site is None or caller.site not in ("all", known.site):
        raise Forbidden("kind", f"This API key may not send {kind} notifications.")


def _times(req: TriggerRequest, now: datetime) -> tuple[datetime | None, datetime | None]:
    """Return (send_at, expires_at), checked against each other and now."""
    send_at = req.send_at
    if send_at is not None and send_at > now + timedelta(seconds=MAX_TTL_SECONDS):
        raise Invalid("send_at", "send_at: must be within 30 days.")
    start = max(now, send_at or now)
    if req.ttl is not None and req.expires_at is not None:
        raise Invalid("ttl", "ttl: give ttl or expires_at, not both.")
    expires_at = req.expires_at
    if req.ttl is not None:
        expires_at = start + timedelta(seconds=req.ttl)
    if expires_at is not None and expires_at <= start:
        raise Invalid("expires_at", "expires_at: must be later than now and than send_at.")
    return send_at, expires_at


@retry_on_conflict
def trigger(caller: Caller, raw: bytes, req: TriggerRequest, idempotency_key: str | None) -> dict:
    """Record a request's notifications (or find the one this key made before); return the answer.

    The unique (api_key_id, idempotency_key) decides between simultaneous twins: the loser's
    insert does nothing and it answers with the winner's stored response.
    """
    check_kind(caller, req.kind)
    now = utcnow()
    send_at, expires_at = _times(req, now)
    digest = body_hash(raw)
    scheduled = send_at is not None and send_at > now
    # Reads first: on SQLite the first write takes the database lock until the commit.
    users, skipped = _resolve(req)
    push = req.channels is None or "push" in req.channels

    # Built once, before the first write: the dedupe keys need a name unique to this request
    # that exists before its row does (a random one; the row links its notifications).
    name = secrets.token_hex(8)
    channels = frozenset(req.channels) if req.channels is not None else None
    notices = [
        Notice(
            user_id=user_id,
            kind=req.kind,
            title=req.title,
            body=req.body,
            url=req.url,
            dedupe_key=f"api:{name}:{user_id}",
            topic=req.topic,
            expires_at=expires_at,
            urgency=req.urgency,
            visible_at=send_at if scheduled else None,
            data=req.data,
            push=push,
            channels=channels,
        )
        for user_id in users
    ]
    routing = routing_for(notices, now)
    if idempotency_key is not None:
        replayed = _earlier_answer(_earlier(caller, idempotency_key), digest, now)
        if replayed is not None:
            return replayed  # the first answer, and nothing written
    for channel in unavailable_channels():
        if req.channels and channel in req.channels:
            skipped.extend(
                {"recipient": given, "reason": "channel_unavailable", "channel": channel}
                for given in users.values()
            )
    # The notifications are the first write, the request row the next: on SQLite everything
    # record_notices prepares before its first INSERT stays out of the database lock.
    created = record_notices(notices, now, routing=routing)
    request_id = _claim_request(caller, idempotency_key, digest, now, send_at, scheduled, req)
    if isinstance(request_id, dict):
        return request_id  # a twin committed first: its answer, and ours rolled back
    if created:
        for batch in chunked(created, 1000):
            insert_rows(
                ApiRequestNotification.__table__,
                [{"api_request_id": request_id, "notification_id": n} for n in batch],
            )
    answer = {
        "id": request_id,
        "status": "scheduled" if scheduled else "queued",
        "recipients": len(created),
        "skipped": skipped,
    }
    # Core, not the ORM's bulk UPDATE: its per-call setup cost 0.7 ms inside the write lock.
    db.session.execute(_SAVE_ANSWER, {"request_id": request_id, "answer": json.dumps(answer)})
    db.session.commit()
    if scheduled and send_at is not None:
        _wake_at(send_at)
    return answer


def _claim_request(
    caller: Caller,
    idempotency_key: str | None,
    digest: str,
    now: datetime,
    send_at: datetime | None,
    scheduled: bool,
    req: TriggerRequest,
) -> int | dict:
    """Insert the request row; return its id, or the stored answer of its earlier twin."""
    values = {
        "api_key_id": caller.key_id,
        "idempotency_key": idempotency_key,
        "body_hash": digest,
        "status": "scheduled" if scheduled else "queued",
        "send_at": send_at,
        "cancellation_key": req.cancellation_key,
        "response": "",
        "created_at": now,
    }
    if idempotency_key is None:
        return db.session.execute(
            ApiRequest.__table__.insert().values(**values).returning(ApiRequest.id)
        ).scalar_one()
    for _ in range(2):
        inserted = db.session.execute(
            insert_ignoring_conflicts(ApiRequest.__table__, ["api_key_id", "idempotency_key"])
            .values(**values)
            .returning(ApiRequest.id)
        ).scalar_one_or_none()
        if inserted is not None:
            return inserted
        earlier = _earlier(caller, idempotency_key)
        if earlier is not None and earlier.created_at < now - IDEMPOTENCY_TTL:
            # Kept 24 h: an older key is free again (the old request keeps its rows).
            db.session.execute(
                update(ApiRequest).where(ApiRequest.id == earlier.id).values(idempotency_key=None)
            )
            continue
        try:
            answer = _earlier_answer(earlier, digest, now)
        finally:
            db.session.rollback()  # what this request wrote, before answering for its twin
        if answer is None:
            raise Raced  # the twin's row went away meanwhile: run the whole request again
        return answer
    raise AssertionError("unreachable: the expired key was freed")


def _earlier(caller: Caller, idempotency_key: str) -> Any:
    """Return the (id, body_hash, response, created_at) of this key's request, or None."""
    return db.session.execute(
        select(
            ApiRequest.id, ApiRequest.body_hash, ApiRequest.response, ApiRequest.created_at
        ).where(
            ApiRequest.api_key_id == caller.key_id,
            ApiRequest.idempotency_key == idempotency_key,
        )
    ).one_or_none()


def _earlier_answer(earlier: Any, digest: str, now: datetime) -> dict | None:
    """Return the stored answer of the earlier request (_earlier) if it had this body and is
    within 24 h (else None); raise Unprocessable for the same key with another body."""
    if earlier is None or earlier.created_at < now - IDEMPOTENCY_TTL:
        return None
    if earlier.body_hash != digest:
        raise Unprocessable(
            "Idempotency-Key",
            "This Idempotency-Key was used with a different body.",
            "idempotency_conflict",
        )
    return json.loads(earlier.response)


def _resolve(req: TriggerRequest) -> tuple[dict[int, dict], list[dict]]:
    """Return the users to notify (id → the recipient as given) and the skipped recipients."""
    ids = {r.user_id for r in req.recipients if r.user_id is not None}
    emails = {normalize_email(r.email) for r in req.recipients if r.email is not None}
    known_ids: set[int] = set()
    by_email: dict[str, int] = {}
    for chunk in chunked(sorted(ids), 500):
        known_ids.update(db.session.scalars(_KNOWN_IDS, {"ids": chunk}))
    for batch in chunked(sorted(emails), 500):
        by_email.update(
            (email, user_id) for user_id, email in db.session.execute(_BY_EMAIL, {"emails": batch})
        )
    users: dict[int, dict] = {}
    skipped: list[dict] = []
    for recipient in req.recipients:
        given = recipient.as_json()
        if recipient.user_id is not None:
            user_id = recipient.user_id if recipient.user_id in known_ids else None
        else:
            user_id = by_email.get(normalize_email(recipient.email or ""))
        if user_id is None:
            skipped.append({"recipient": given, "reason": "unknown_user"})
        elif user_id in users:
            skipped.append({"recipient": given, "reason": "duplicate"})
        else:
            users[user_id] = given
    return users, skipped


_SAVE_ANSWER = (
    ApiRequest.__table__.update()
    .where(ApiRequest.__table__.c.id == bindparam("request_id"))
    .values(response=bindparam("answer"))
)
# Built once: the lists are bound per call instead of building a clause per recipient.
_KNOWN_IDS = select(User.id).where(one_of(User.id, "ids"))
_BY_EMAIL = select(User.id, User.email).where(one_of(User.email, "emails"))


def _wake_at(when: datetime) -> None:
    """Ask a worker to release scheduled requests at when (the cron entry is the safety net)."""
    # RQ keeps the due time in whole seconds, cut down: 12:00:26.8 would run at 12:00:26.0,
    # find nothing due yet and leave it to the cron a minute later. Round up instead.
    due = datetime.fromtimestamp(math.ceil(when.timestamp()), UTC)
    try:
        queue().enqueue_at(due, RELEASE_JOB, result_ttl=0)
    except Exception:
        log.warning("could not schedule the release at %s; the cron job will", when, exc_info=True)


# -- releasing scheduled requests -------------------------------------------------------------


def release_due(chunk: int = 200, at: datetime | None = None) -> int:
    """Job: publish and enqueue the scheduled requests now due; return how many were released.

    at: the release's clock (default now); quiet hours are judged at it.
    """
    with app_context():
        now = at or utcnow()
        due = select(ApiRequest.id).where(
            ApiRequest.status == "scheduled", ApiRequest.send_at <= now
        )
        released = 0
        for ids in keyset_ids(due, ApiRequest.id, chunk):
            for request_id in ids:
                released += _release(request_id, now)
        return released


@retry_on_conflict
def _release(request_id: int, now: datetime) -> int:
    """Release one request, once: the conditional update lets one releaser (or a cancel) win."""
    won = rows_changed(
        update(ApiRequest)
        .where(ApiRequest.id == request_id, ApiRequest.status == "scheduled")
        .values(status="queued")
    )
    if not won:
        db.session.rollback()
        return 0
    notes = db.session.execute(
        select(
            Notification.id,
            Notification.user_id,
            Notification.kind,
            Notification.dedupe_key,
            Notification.title,
            Notification.body,
            Notification.url,
            Notification.tag,
            Notification.created_at,
            Notification.data,
        )
        .join(ApiRequestNotification, ApiRequestNotification.notification_id == Notification.id)
        .where(
            ApiRequestNotification.api_request_id == request_id,
            Notification.visible_at.is_not(None),
        )
    ).all()
    if notes:
        ids = [n.id for n in notes]
        # Visible from the release, not from send_at: a tab that saw newer notifications
        # before this one went out catches up on it by that time (list_since), whatever its
        # older id.
        db.session.execute(
            update(Notification).where(Notification.id.in_(ids)).values(visible_at=utcnow())
        )
        # Presence is decided now, when it is due, as for any new notification.
        quiet = live_only(notes)
        if quiet:
            db.session.execute(
                update(Delivery)
                .where(
                    Delivery.notification_id.in_(quiet),
                    Delivery.status == "pending",
                    Delivery.channel == "push",  # presence holds back push only
                )
                .values(status="skipped")
            )
        held = _hold_for_quiet_hours(notes, now)
        remember_for_enqueue(
            db.session.scalars(
                select(Delivery.id).where(
                    Delivery.notification_id.in_(ids),
                    Delivery.status == "pending",
                    Delivery.id.not_in(held),
                )
            )
        )
        remember_for_publish(live_messages(notes, {n.dedupe_key: n._asdict() for n in notes}))
    db.session.commit()
    return 1


def _hold_for_quiet_hours(notes: Sequence, now: datetime) -> list[int]:
    """Hold the push and SMS of released notices inside their user's quiet hours.

    Quiet hours are decided at release, as recording decides them for a notice due at once:
    held deliveries wait for the window's end (the sweeper hands them over then); a notice
    that would expire first goes now with Urgency low (quiet.hold writes it). A fallback due
    after the window keeps its own later time. Returns the held delivery ids.
    """
    held: list[int] = []
    for notification_id, ends in quiet_hours.hold(notes, now).items():
        held.extend(
            db.session.scalars(
                update(Delivery)
                .where(
                    Delivery.notification_id == notification_id,
                    Delivery.status == "pending",
                    Delivery.channel.in_(("push", "sms")),  # e-mail and the inbox never wait
                    or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at < ends),
                )
                .values(next_attempt_at=ends)
                .returning(Delivery.id)
            ).all()
        )
    return held


# -- cancelling -------------------------------------------------------------------------------


def _own_request(caller: Caller, request_id: int) -> ApiRequest:
    row = db.session.get(ApiRequest, request_id)
    if row is None or row.api_key_id != caller.key_id:
        raise NotFound("id", "No such notification request.")
    return row


@retry_on_conflict
def cancel(caller: Caller, *, request_id: int | None = None, key: str | None = None) -> int:
    """Withdraw what has not gone out of one request, or of every request with a cancellation key.

    Pending deliveries become `cancelled`; a scheduled request's notifications leave the inbox
    before anyone saw them. Returns how many notifications lost something.
    """
    if request_id is not None:
        ids = [_own_request(caller, request_id).id]
    else:
        ids = list(
            db.session.scalars(
                select(ApiRequest.id).where(
                    ApiRequest.api_key_id == caller.key_id,
                    ApiRequest.cancellation_key == key,
                    ApiRequest.status != "cancelled",
                )
            )
        )
    touched: set[int] = set()
    for chunk in chunked(ids, 200):
        linked = (
            select(ApiRequestNotification.notification_id)
            .where(ApiRequestNotification.api_request_id.in_(chunk))
            .scalar_subquery()
        )
        withdrawn = db.session.scalars(
            update(ApiRequest)
            .where(ApiRequest.id.in_(chunk), ApiRequest.status == "scheduled")
            .values(status="cancelled")
            .returning(ApiRequest.id)
        ).all()
        db.session.execute(
            update(ApiRequest)
            .where(ApiRequest.id.in_(chunk), ApiRequest.status == "queued")
            .values(status="cancelled")
        )
        touched.update(
            db.session.scalars(
                update(Delivery)
                .where(Delivery.notification_id.in_(linked), Delivery.status == "pending")
                .values(status="cancelled", next_attempt_at=None)
                .returning(Delivery.notification_id)
            ).all()
        )
        if withdrawn:
            touched.update(
                db.session.scalars(
                    update(Notification)
                    .where(
                        Notification.id.in_(
                            select(ApiRequestNotification.notification_id).where(
                                ApiRequestNotification.api_request_id.in_(withdrawn)
                            )
                        )
                    )
                    .values(visible_at=None)
                    .returning(Notification.id)
                ).all()
            )
    db.session.commit()
    return len(touched)


# -- the status report ------------------------------------------------------------------------


def status(caller: Caller, request_id: int) -> dict:
    """Return what became of one of this key's requests, per recipient and channel."""
    row = _own_request(caller, request_id)
    recipients = db.session.execute(
        select(Notification.id, Notification.user_id, Notification.read_at, Notification.clicked_at)
        .join(ApiRequestNotification, ApiRequestNotification.notification_id == Notification.id)
        .where(ApiRequestNotification.api_request_id == request_id)
        .order_by(Notification.id)
    ).all()
    counts: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(_STATES, 0))
    unfinished = 0
    for notification_id, channel, state, n in db.session.execute(
        select(Delivery.notification_id, Delivery.channel, Delivery.status, func.count())
        .join(
            ApiRequestNotification,
            ApiRequestNotification.notification_id == Delivery.notification_id,
        )
        .where(ApiRequestNotification.api_request_id == request_id)
        .group_by(Delivery.notification_id, Delivery.channel, Delivery.status)
    ):
        counts[(notification_id, channel)][COUNTED_AS[state]] += n
        if state in ("pending", "sending"):
            unfinished += n
    overall = row.status
    if overall == "queued" and not unfinished:
        overall = "sent"
    return {
        "id": row.id,
        "status": overall,
        "created_at": isoformat(row.created_at),
        "send_at": isoformat(row.send_at),
        "recipients": [
            {
                "user_id": user_id,
                "notification_id": notification_id,
                "read_at": isoformat(read_at),
                "clicked_at": isoformat(clicked_at),
                "channels": {
                    channel: counts[(notification_id, channel)]
                    for channel in ("push", "email", "sms")
                },
            }
            for notification_id, user_id, read_at, clicked_at in recipients
        ],
    }


_STATES = ("pending", "sent", "failed", "skipped", "cancelled")

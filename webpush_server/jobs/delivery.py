"""Deliver batches of outbox rows by Web Push, and sweep up what was left behind."""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update

from ..extensions import db
from ..notifications.models import Delivery, DeliveryAttempt, Notification
from ..notifications.payload import push_payload
from ..push import host_policy, signer
from ..push.models import Subscription
from ..push.policy import Outcome, backoff_seconds
from ..push.sender import PushRequest, PushResult, Sender, SyncSender, origin_of
from ..timeutil import utcnow
from .context import app_context
from .keyset import keyset_ids
from .queues import DELIVERY_QUEUE, enqueue_deliveries, queue

log = logging.getLogger(__name__)


def _sender() -> SyncSender:
    """Return this process's sender: its connection pools outlive a single batch."""
    cached = current_app.extensions.get("push_sender")
    # A forked child must not reuse its parent's event loop and sockets.
    if cached is None or cached[0] != os.getpid():
        config = current_app.config
        vapid, policy = signer(), host_policy()
        sender = SyncSender(
            lambda: Sender(
                vapid,
                policy,
                concurrency_per_origin=config["PUSH_CONCURRENCY_PER_ORIGIN"],
                timeout=config["PUSH_TIMEOUT_SECONDS"],
            )
        )
        cached = (os.getpid(), sender)
        current_app.extensions["push_sender"] = cached
    return cached[1]


def warm_up() -> None:
    """Build this process's sender before the first job arrives."""
    _sender()


def close_sender(app) -> None:
    """Close the app's pooled push connections (tests, shutdown)."""
    cached = app.extensions.pop("push_sender", None)
    if cached is not None and cached[0] == os.getpid():
        cached[1].close()


def deliver_batch(delivery_ids: list[int]) -> dict[str, int]:
    """RQ job: claim and send these deliveries; return a count per outcome."""
    with app_context():
        return deliver(delivery_ids)


@dataclass(slots=True)
class Claimed:
    """A claimed delivery with what sending it needs: plain values, no ORM state."""

    id: int
    attempts: int
    tickle: bool
    subscription_id: int | None
    endpoint: str | None
    p256dh: str | None
    auth: str | None
    notification_id: int
    kind: str
    title: str
    body: str
    url: str
    tag: str
    urgency: str
    topic: str | None
    expires_at: datetime
    created_at: datetime


_D, _N, _S = Delivery.__table__.c, Notification.__table__.c, Subscription.__table__.c
# Core rows, not ORM objects: building three entities per row cost more than encrypting it.
_CLAIMED_COLUMNS = (
    _D.id,
    _D.attempts,
    _D.tickle,
    _D.subscription_id,
    _S.endpoint,
    _S.p256dh,
    _S.auth,
    _N.id.label("notification_id"),
    _N.kind,
    _N.title,
    _N.body,
    _N.url,
    _N.tag,
    _N.urgency,
    _N.topic,
    _N.expires_at,
    _N.created_at,
)


def claim(delivery_ids: list[int], now: datetime) -> list[Claimed]:
    """Atomically take the due pending deliveries among ids; another worker gets none of them."""
    token = uuid.uuid4().hex
    db.session.execute(
        update(Delivery.__table__)
        .where(
            _D.id.in_(delivery_ids),
            _D.status == "pending",
            or_(_D.next_attempt_at.is_(None), _D.next_attempt_at <= now),
        )
        .values(status="sending", claim_token=token, claimed_at=now, attempts=_D.attempts + 1)
    )
    db.session.commit()
    return load(_D.claim_token == token)


_CLAIMED_FROM = Delivery.__table__.join(
    Notification.__table__, _N.id == _D.notification_id
).outerjoin(Subscription.__table__, _S.id == _D.subscription_id)


def load(condition) -> list[Claimed]:
    """Return the deliveries matching condition with their notification and device."""
    query = select(*_CLAIMED_COLUMNS).select_from(_CLAIMED_FROM).where(condition)
    return [Claimed(*row) for row in db.session.execute(query.order_by(_D.id))]


def build_payload(item: Claimed, tickle: bool) -> tuple[bytes, bool]:
    """Return the push message and whether it is a tickle (the full one would not fit)."""
    return push_payload(
        id=item.notification_id,
        kind=item.kind,
        title=item.title,
        body=item.body,
        url=item.url,
        tag=item.tag,
        created_at=item.created_at,
        tickle=tickle,
    )


def _request(item: Claimed, now: datetime) -> PushRequest:
    payload, item.tickle = build_payload(item, item.tickle)
    return PushRequest(
        key=item.id,
        endpoint=item.endpoint,
        p256dh=item.p256dh,
        auth=item.auth,
        payload=payload,
        ttl=max(1, math.ceil((item.expires_at - now).total_seconds())),
        urgency=item.urgency,
        topic=item.topic,
    )


def deliver(delivery_ids: list[int]) -> dict[str, int]:
    """Claim, send and record the outcome of each delivery; schedule retries."""
    now = utcnow()
    return send_claimed(claim(delivery_ids, now), now)


def send_claimed(claimed: list[Claimed], now: datetime) -> dict[str, int]:
    """Send claimed deliveries and record what became of each."""
    if not claimed:
        return {}
    tries: dict[int, list[PushResult]] = defaultdict(list)
    sendable: dict[int, Claimed] = {}
    for item in claimed:
        if item.subscription_id is None:
            tries[item.id].append(PushResult(item.id, Outcome.GONE, error="device was removed"))
        elif item.expires_at <= now:
            tries[item.id].append(
                PushResult(item.id, Outcome.EXPIRED, error="expired before sending")
            )
        else:
            sendable[item.id] = item
    for result in _sender().send([_request(item, now) for item in sendable.values()]):
        tries[result.key].append(result)
    # 413: the service wants less. Resend those at once as tickles (id only).
    resend = [
        item
        for item in sendable.values()
        if tries[item.id][-1].outcome is Outcome.TOO_LARGE and not item.tickle
    ]
    for item in resend:
        item.tickle = True
    for result in _sender().send([_request(item, now) for item in resend]):
        tries[result.key].append(result)
    return _apply(claimed, tries, now)


_UPDATE_DELIVERY = (
    update(Delivery.__table__)
    .where(_D.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        attempts=bindparam("b_attempts"),
        tickle=bindparam("b_tickle"),
        next_attempt_at=bindparam("b_next_attempt_at"),
        claim_token=None,
        last_status_code=bindparam("b_last_status_code"),
        last_error=bindparam("b_last_error"),
        sent_at=bindparam("b_sent_at"),
    )
)


def _apply(
    claimed: list[Claimed], tries: dict[int, list[PushResult]], now: datetime
) -> dict[str, int]:
    """Record every attempt and each delivery's new state in one transaction."""
    config = current_app.config
    counts: dict[str, int] = defaultdict(int)
    updates, attempts, retries = [], [], defaultdict(list)
    succeeded, failed, gone = set(), set(), []
    for item in claimed:
        results = tries[item.id]
        # claim() counted one attempt; a tickle resend in the same job is one more.
        first_number = item.attempts
        item.attempts += len(results) - 1
        result = results[-1]
        status, next_at = _next_state(item.attempts, result, now, config)
        if status == "pending":
            retries[next_at].append(item.id)
        if result.outcome is Outcome.SENT:
            succeeded.add(item.subscription_id)
        elif result.outcome is Outcome.GONE and item.subscription_id is not None:
            # Compare against the endpoint and keys we sent to, read when we claimed.
            gone.append(
                {
                    "s_id": item.subscription_id,
                    "s_endpoint": item.endpoint,
                    "s_p256dh": item.p256dh,
                    "s_auth": item.auth,
                }
            )
        elif item.subscription_id is not None and result.outcome is not Outcome.EXPIRED:
            failed.add(item.subscription_id)
        if result.outcome is Outcome.CONFIG_ERROR:
            # Our keys or JWT are wrong: nobody will get anything until an operator acts.
            log.error(
                "push service %s refused delivery %s (%s): check VAPID keys and subject",
                origin_of(item.endpoint),
                item.id,
                result.error,
            )
        counts[status] += 1
        updates.append(
            {
                "b_id": item.id,
                "b_status": status,
                "b_attempts": item.attempts,
                "b_tickle": item.tickle,
                "b_next_attempt_at": next_at,
                "b_last_status_code": result.status,
                "b_last_error": result.error[:500] if result.error else None,
                "b_sent_at": now if status == "sent" else None,
            }
        )
        attempts.extend(
            {
                "delivery_id": item.id,
                "attempt": first_number + offset,
                "outcome": attempt.outcome.value,
                "status_code": attempt.status,
                "error": attempt.error[:500] if attempt.error else None,
                "at": now,
            }
            for offset, attempt in enumerate(results)
        )
    db.session.execute(_UPDATE_DELIVERY, updates)
    db.session.execute(insert(DeliveryAttempt.__table__), attempts)
    if succeeded:
        db.session.execute(
            update(Subscription.__table__)
            .where(_S.id.in_(succeeded))
            .values(last_success_at=now, failure_count=0)
        )
    if failed:
        db.session.execute(
            update(Subscription.__table__)
            .where(_S.id.in_(failed))
            .values(last_failure_at=now, failure_count=_S.failure_count + 1)
        )
    if gone:
        _compare_and_delete(gone)
    db.session.commit()
    for when, ids in retries.items():
        _schedule_retry(ids, when, now)
    return dict(counts)


def _compare_and_delete(gone: list[dict]) -> None:
    """Delete dead subscriptions only if they still hold the endpoint and keys we sent to.

    The browser may have re-subscribed meanwhile (same row, new keys): that row stays.
    """
    table = Subscription.__table__
    db.session.execute(
        delete(table).where(
            and_(
                table.c.id == bindparam("s_id"),
                table.c.endpoint == bindparam("s_endpoint"),
                table.c.p256dh == bindparam("s_p256dh"),
                table.c.auth == bindparam("s_auth"),
            )
        ),
        gone,
    )


def _next_state(
    attempts: int, result: PushResult, now: datetime, config
) -> tuple[str, datetime | None]:
    """Return the delivery's new status and, for a retry, when to try again."""
    outcome = result.outcome
    if outcome is Outcome.SENT:
        return "sent", None
    if outcome is Outcome.GONE:
        return "gone", None
    if outcome is Outcome.EXPIRED:
        return "expired", None
    if outcome in (Outcome.RATE_LIMITED, Outcome.TRANSIENT):
        if attempts >= config["PUSH_MAX_ATTEMPTS"]:
            return "failed", None
        delay = backoff_seconds(
            attempts, config["PUSH_RETRY_BASE_SECONDS"], config["PUSH_RETRY_MAX_SECONDS"]
        )
        if outcome is Outcome.RATE_LIMITED and result.retry_after is not None:
            delay = min(max(result.retry_after, 0.0), config["PUSH_RETRY_MAX_SECONDS"])
        return "pending", now + timedelta(seconds=delay)
    # TOO_LARGE even as a tickle, CONFIG_ERROR, REFUSED: retrying would not help.
    return "failed", None


def _schedule_retry(ids: list[int], when: datetime, now: datetime) -> None:
    try:
        queue(DELIVERY_QUEUE).enqueue_in(
            max(timedelta(0), when - now),
            "webpush_server.jobs.delivery.deliver_batch",
            ids,
            result_ttl=0,
        )
    except Exception:
        # The rows say when they are due; the sweeper will enqueue them.
        log.warning("could not schedule a retry of %d deliveries", len(ids), exc_info=True)


def sweep_outbox(chunk: int = 1000) -> int:
    """Re-enqueue deliveries left pending (a crash between commit and enqueue, a lost job)."""
    with app_context():
        config = current_app.config
        now = utcnow()
        stale = now - timedelta(seconds=config["DELIVERY_CLAIM_TIMEOUT_SECONDS"])
        # A worker that died mid-batch leaves rows claimed forever: give them back.
        db.session.execute(
            update(Delivery)
            .where(Delivery.status == "sending", Delivery.claimed_at < stale)
            .values(status="pending", claim_token=None, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        # Leave just-recorded rows to the enqueue that follows their commit.
        due = now - timedelta(seconds=config["SWEEP_GRACE_SECONDS"])
        pending = select(Delivery.id).where(
            Delivery.status == "pending",
            func.coalesce(Delivery.next_attempt_at, Delivery.created_at) <= due,
        )
        total = 0
        for ids in keyset_ids(pending, Delivery.id, chunk):
            enqueue_deliveries(ids)
            total += len(ids)
        return total

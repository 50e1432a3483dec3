"""Deliver batches of outbox rows by Web Push, and sweep up what was left behind."""

from __future__ import annotations

import json
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
from ..push import host_policy, signer
from ..push.crypto import MAX_PLAINTEXT
from ..push.models import Subscription
from ..push.policy import Outcome, backoff_seconds
from ..push.sender import PushRequest, PushResult, Sender, SyncSender, origin_of
from ..timeutil import isoformat, utcnow
from .context import app_context
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


def close_sender(app) -> None:
    """Close the app's pooled push connections (tests, shutdown)."""
    cached = app.extensions.pop("push_sender", None)
    if cached is not None and cached[0] == os.getpid():
        cached[1].close()


def deliver_batch(delivery_ids: list[int]) -> dict[str, int]:
    """RQ job: claim and send these deliveries; return a count per outcome."""
    with app_context():
        return deliver(delivery_ids)


@dataclass
class _Claimed:
    delivery: Delivery
    notification: Notification
    subscription: Subscription | None


def claim(delivery_ids: list[int], now: datetime) -> list[_Claimed]:
    """Atomically take the due pending deliveries among ids; another worker gets none of them."""
    token = uuid.uuid4().hex
    db.session.execute(
        update(Delivery)
        .where(
            Delivery.id.in_(delivery_ids),
            Delivery.status == "pending",
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
        )
        .values(
            status="sending",
            claim_token=token,
            claimed_at=now,
            attempts=Delivery.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    rows = db.session.execute(
        select(Delivery, Notification, Subscription)
        .join(Notification, Notification.id == Delivery.notification_id)
        .outerjoin(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Delivery.claim_token == token)
        .order_by(Delivery.id)
    ).all()
    return [_Claimed(*row) for row in rows]


def build_payload(notification: Notification, tickle: bool) -> tuple[bytes, bool]:
    """Return the push message and whether it is a tickle (the full one would not fit)."""
    if not tickle:
        full = json.dumps(
            {
                "id": notification.id,
                "kind": notification.kind,
                "title": notification.title,
                "body": notification.body,
                "url": notification.url,
                "tag": notification.tag,
                "created_at": isoformat(notification.created_at),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        if len(full) <= MAX_PLAINTEXT:
            return full, False
    small = {"id": notification.id, "kind": notification.kind, "tickle": True}
    return json.dumps(small, separators=(",", ":")).encode(), True


def _request(item: _Claimed, now: datetime) -> PushRequest:
    notification, sub = item.notification, item.subscription
    payload, tickle = build_payload(notification, item.delivery.tickle)
    item.delivery.tickle = tickle
    return PushRequest(
        key=item.delivery.id,
        endpoint=sub.endpoint,
        p256dh=sub.p256dh,
        auth=sub.auth,
        payload=payload,
        ttl=max(1, math.ceil((notification.expires_at - now).total_seconds())),
        urgency=notification.urgency,
        topic=notification.topic,
    )


def deliver(delivery_ids: list[int]) -> dict[str, int]:
    """Claim, send and record the outcome of each delivery; schedule retries."""
    now = utcnow()
    return send_claimed(claim(delivery_ids, now), now)


def send_claimed(claimed: list[_Claimed], now: datetime) -> dict[str, int]:
    """Send claimed deliveries and record what became of each."""
    if not claimed:
        return {}
    tries: dict[int, list[PushResult]] = defaultdict(list)
    sent_to: dict[int, PushRequest] = {}
    sendable: dict[int, _Claimed] = {}
    for item in claimed:
        key = item.delivery.id
        if item.subscription is None:
            tries[key].append(PushResult(key, Outcome.GONE, error="device was removed"))
        elif item.notification.expires_at <= now:
            tries[key].append(PushResult(key, Outcome.EXPIRED, error="expired before sending"))
        else:
            sendable[key] = item
    requests = [_request(item, now) for item in sendable.values()]
    sent_to.update((r.key, r) for r in requests)
    for result in _sender().send(requests):
        tries[result.key].append(result)
    # 413: the service wants less. Resend those at once as tickles (id only).
    resend = [
        sendable[key]
        for key, results in tries.items()
        if results[-1].outcome is Outcome.TOO_LARGE and not sendable[key].delivery.tickle
    ]
    for item in resend:
        item.delivery.tickle = True
    for result in _sender().send([_request(item, now) for item in resend]):
        tries[result.key].append(result)
    return _apply(claimed, tries, sent_to, now)


def _apply(
    claimed: list[_Claimed],
    tries: dict[int, list[PushResult]],
    sent_to: dict[int, PushRequest],
    now: datetime,
) -> dict[str, int]:
    """Record every attempt and each delivery's new state in one transaction."""
    config = current_app.config
    counts: dict[str, int] = defaultdict(int)
    updates, attempts, retries = [], [], defaultdict(list)
    succeeded, failed, gone = set(), set(), []
    for item in claimed:
        delivery, sub = item.delivery, item.subscription
        results = tries[delivery.id]
        # claim() counted one attempt; a tickle resend in the same job is one more.
        first_number = delivery.attempts
        delivery.attempts += len(results) - 1
        result = results[-1]
        status, next_at = _next_state(delivery, result, now, config)
        if status == "pending":
            retries[next_at].append(delivery.id)
        if result.outcome is Outcome.SENT:
            succeeded.add(sub.id)
        elif result.outcome is Outcome.GONE and sub is not None:
            gone.append(
                {
                    "s_id": sub.id,
                    "s_endpoint": sub.endpoint,
                    "s_p256dh": sub.p256dh,
                    "s_auth": sub.auth,
                }
            )
        elif sub is not None and result.outcome is not Outcome.EXPIRED:
            failed.add(sub.id)
        if result.outcome is Outcome.CONFIG_ERROR:
            # Our keys or JWT are wrong: nobody will get anything until an operator acts.
            log.error(
                "push service %s refused delivery %s (%s): check VAPID keys and subject",
                origin_of(sub.endpoint),
                delivery.id,
                result.error,
            )
        counts[status] += 1
        updates.append(
            {
                "id": delivery.id,
                "status": status,
                "attempts": delivery.attempts,
                "tickle": delivery.tickle,
                "next_attempt_at": next_at,
                "claim_token": None,
                "last_status_code": result.status,
                "last_error": result.error[:500] if result.error else None,
                "sent_at": now if status == "sent" else None,
            }
        )
        attempts.extend(
            {
                "delivery_id": delivery.id,
                "attempt": first_number + offset,
                "outcome": attempt.outcome.value,
                "status_code": attempt.status,
                "error": attempt.error[:500] if attempt.error else None,
                "at": now,
            }
            for offset, attempt in enumerate(results)
        )
    db.session.execute(update(Delivery), updates)
    db.session.execute(insert(DeliveryAttempt.__table__), attempts)
    if succeeded:
        db.session.execute(
            update(Subscription)
            .where(Subscription.id.in_(succeeded))
            .values(last_success_at=now, failure_count=0)
        )
    if failed:
        db.session.execute(
            update(Subscription)
            .where(Subscription.id.in_(failed))
            .values(last_failure_at=now, failure_count=Subscription.failure_count + 1)
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
    delivery: Delivery, result: PushResult, now: datetime, config
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
        if delivery.attempts >= config["PUSH_MAX_ATTEMPTS"]:
            return "failed", None
        delay = backoff_seconds(
            delivery.attempts, config["PUSH_RETRY_BASE_SECONDS"], config["PUSH_RETRY_MAX_SECONDS"]
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
        total, last_id = 0, 0
        while True:
            ids = db.session.scalars(
                select(Delivery.id)
                .where(
                    Delivery.id > last_id,
                    Delivery.status == "pending",
                    func.coalesce(Delivery.next_attempt_at, Delivery.created_at) <= due,
                )
                .order_by(Delivery.id)
                .limit(chunk)
            ).all()
            db.session.rollback()
            if not ids:
                return total
            enqueue_deliveries(ids)
            total += len(ids)
            last_id = ids[-1]

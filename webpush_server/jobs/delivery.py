"""Deliver batches of outbox rows by Web Push: claim, send, record.

claim.py takes the rows, push/sender.py sends them, outcomes.py plans and writes what became
of each; the sweeper (sweep.py) picks up what a crash or a lost job left behind.
"""

from __future__ import annotations

import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import current_app

from ..notifications.payload import push_payload
from ..push import host_policy, signer
from ..push.policy import Outcome, RetrySettings
from ..push.sender import PushRequest, PushResult, Sender, SyncSender, origin_of
from ..timeutil import utcnow
from .claim import Claimed, claim
from .context import app_context
from .outcomes import plan_batch, write_plan
from .queues import DELIVERY_QUEUE, job_meta, queue

# The sweeper moved to sweep.py; the cron table names it by this path too.
from .sweep import sweep_outbox  # noqa: F401

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


def retry_settings(config) -> RetrySettings:
    """Return the retry bound and backoff from the app's configuration."""
    return RetrySettings(
        max_attempts=config["PUSH_MAX_ATTEMPTS"],
        base_seconds=config["PUSH_RETRY_BASE_SECONDS"],
        max_seconds=config["PUSH_RETRY_MAX_SECONDS"],
    )


def deliver_batch(delivery_ids: list[int]) -> dict[str, int]:
    """RQ job: claim and send these deliveries; return a count per outcome."""
    with app_context():
        return deliver(delivery_ids)


def deliver(delivery_ids: list[int]) -> dict[str, int]:
    """Claim, send and record the outcome of each delivery; schedule retries."""
    now = utcnow()
    claimed = claim(delivery_ids, now)
    log.info(
        "claimed %d of %d deliveries",
        len(claimed),
        len(delivery_ids),
        extra={"delivery_ids": [item.id for item in claimed]},
    )
    return send_claimed(claimed, now)


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
        data=item.data,
    )


def _request(item: Claimed, now: datetime) -> PushRequest:
    # Only deliveries whose device still exists are sent; such a device has all three.
    assert item.endpoint and item.p256dh and item.auth
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


def _requests(
    items: Iterable[Claimed], now: datetime, tries: dict[int, list[PushResult]]
) -> list[PushRequest]:
    """Return the requests for items; one that cannot be built is that item's failed try."""
    requests = []
    for item in items:
        try:
            requests.append(_request(item, now))
        except Exception as exc:
            log.error("building the push request for delivery %s raised", item.id, exc_info=exc)
            error = f"{type(exc).__name__}: {exc}"
            tries[item.id].append(PushResult(item.id, Outcome.ERROR, error=error))
    return requests


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
    for result in _sender().send(_requests(sendable.values(), now, tries)):
        tries[result.key].append(result)
    # 413: the service wants less. Resend those at once as tickles (id only).
    resend = [
        item
        for item in sendable.values()
        if tries[item.id][-1].outcome is Outcome.TOO_LARGE and not item.tickle
    ]
    for item in resend:
        item.tickle = True
    for result in _sender().send(_requests(resend, now, tries)):
        tries[result.key].append(result)
    plan = plan_batch(claimed, tries, now, retry_settings(current_app.config))
    write_plan(plan)
    for delivery_id, endpoint, error in plan.config_errors:
        # Our keys or JWT are wrong: nobody will get anything until an operator acts.
        log.error(
            "push service %s refused delivery %s (%s): check VAPID keys and subject",
            origin_of(endpoint),
            delivery_id,
            error,
        )
    for when, ids in plan.retries.items():
        _schedule_retry(ids, when, now)
    return plan.counts


def _schedule_retry(ids: list[int], when: datetime, now: datetime) -> None:
    try:
        queue(DELIVERY_QUEUE).enqueue_in(
            max(timedelta(0), when - now),
            "webpush_server.jobs.delivery.deliver_batch",
            ids,
            result_ttl=0,
            meta=job_meta(),
        )
    except Exception:
        # The rows say when they are due; the sweeper will enqueue them.
        log.warning("could not schedule a retry of %d deliveries", len(ids), exc_info=True)

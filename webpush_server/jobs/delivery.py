"""Deliver batches of outbox rows by Web Push: claim, send, record.

claim.py takes the rows, push/sender.py sends them, outcomes.py plans and writes what became
of each; the sweeper (sweep.py) picks up what a crash or a lost job left behind.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import current_app

from .. import channels
from ..config import public_url
from ..notifications.payload import push_payload
from ..push import host_policy, signer
from ..push.policy import Outcome, RetrySettings
from ..push.sender import PushRequest, PushResult, Sender, SyncSender, origin_of
from ..timeutil import utcnow
from .claim import Claimed, claim, not_yet_due
from .context import app_context
from .lane import RetryLane, current_lane
from .lease import Lease
from .outcomes import plan_batch, write_plan
from .queues import DELIVERY_QUEUE, job_meta, queue

# The sweeper moved to sweep.py; the cron table names it by this path too.
from .sweep import sweep_outbox  # noqa: F401

log = logging.getLogger(__name__)

ICON_PATH = "/static/icons/icon-192.png"

# Outcomes are written a sub-batch at a time as they arrive: a worker killed after the push
# service accepted its requests repeats at most the one sub-batch it had not written.
SUB_BATCH = 50


# Outcomes wait at most this long after their sub-batch's first answer before they are
# written: a 429's retry is timed from the write, so it must not wait behind slow requests.
DEFAULTS = {"DELIVERY_WRITE_WAIT_SECONDS": 0.25}

# A retry lane's sender threads each have a sender of their own: a SyncSender's event loop
# and connection pools serve one thread at a time.
_thread = threading.local()


def _sender() -> SyncSender:
    """Return this thread's sender: its connection pools outlive a single batch."""
    own: SyncSender | None = getattr(_thread, "sender", None)
    if own is not None:
        return own
    cached = current_app.extensions.get("push_sender")
    # A forked child must not reuse its parent's event loop and sockets.
    if cached is None or cached[0] != os.getpid():
        cached = (os.getpid(), new_sender())
        current_app.extensions["push_sender"] = cached
    return cached[1]


def new_sender() -> SyncSender:
    """Return a new sender for the app's VAPID key, host policy and tuning."""
    config = current_app.config
    vapid, policy = signer(), host_policy()
    return SyncSender(
        lambda: Sender(
            vapid,
            policy,
            concurrency_per_origin=config["PUSH_CONCURRENCY_PER_ORIGIN"],
            timeout=config["PUSH_TIMEOUT_SECONDS"],
        )
    )


@contextmanager
def thread_sender() -> Iterator[None]:
    """Give this thread a sender of its own while the block runs, then close it."""
    sender = new_sender()
    _thread.sender = sender
    try:
        yield
    finally:
        _thread.sender = None
        sender.close()


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
    """Claim, send and record the outcome of each delivery; schedule retries.

    Deliveries handed over before they are due (RQ started the retry job early) are
    scheduled again for their time.
    """
    now = utcnow()
    claimed = claim(delivery_ids, now)
    log.info(
        "claimed %d of %d deliveries",
        len(claimed),
        len(delivery_ids),
        extra={"delivery_ids": [item.id for item in claimed]},
    )
    early = not_yet_due(delivery_ids, now)
    if early:
        schedule_retries(early, now)
    return send_claimed(claimed, now)


def build_payload(item: Claimed, tickle: bool) -> tuple[bytes, bool]:
    """Return the push message and whether it is a tickle (the full one would not fit).

    A click on it opens /n/<id> on PUBLIC_URL, which marks it read and clicked.
    """
    base = public_url(current_app.config)
    return push_payload(
        id=item.notification_id,
        kind=item.kind,
        title=item.title,
        body=item.body,
        url=item.url,
        tag=item.tag,
        created_at=item.created_at,
        navigate=f"{base}/n/{item.notification_id}",
        origin=base,
        icon=f"{base}{ICON_PATH}",
        app_badge=item.unread,
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
        topic=item.topic or notification_topic(item.notification_id),
    )


def notification_topic(notification_id: int) -> str:
    """Return the Topic of a notification whose kind gives none: its id, as base64url.

    A repeat of the same notification (a worker killed after the push service took it)
    then replaces the undelivered first copy instead of showing twice; the payload's tag
    does the same on the device. At most 32 URL-safe base64 characters (RFC 8030).
    """
    raw = notification_id.to_bytes(8, "big").lstrip(b"\0") or b"\0"
    return "n-" + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


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
    """Send claimed deliveries and record what became of each, a sub-batch at a time.

    While it runs, the claims are renewed (lease.py), so the sweeper leaves a live worker's
    rows alone and takes back a dead one's soon.
    """
    if not claimed:
        return {}
    config = current_app.config
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    tokens = {item.claim_token for item in claimed if item.claim_token}
    batch = _Batch(now, retry_settings(config))
    with Lease(app, tokens, config["DELIVERY_CLAIM_TIMEOUT_SECONDS"] / 3):
        sendable: list[Claimed] = []
        settled: list[Claimed] = []
        others: list[Claimed] = []  # e-mail and SMS: channels/ sends them
        for item in claimed:
            if item.channel != "push" and item.expires_at > now:
                others.append(item)
            elif item.subscription_id is None and item.channel == "push":
                batch.tries[item.id].append(
                    PushResult(item.id, Outcome.GONE, error="device was removed")
                )
                settled.append(item)
            elif item.expires_at <= now:
                batch.tries[item.id].append(
                    PushResult(item.id, Outcome.EXPIRED, error="expired before sending")
                )
                settled.append(item)
            else:
                sendable.append(item)
        # 413: the service wants less. Those are resent at once as tickles (id only), and
        # settled when the tickle's answer is in.
        resend = batch.send(sendable, settled)
        for item in resend:
            item.tickle = True
        batch.send(resend, [])
        batch.send_other(others)
    return dict(batch.counts)


class _Batch:
    """One job's claimed deliveries, sent and written a sub-batch at a time."""

    def __init__(self, now: datetime, settings: RetrySettings) -> None:
        self.now = now
        self.settings = settings
        self.tries: dict[int, list[PushResult]] = defaultdict(list)
        self.counts: Counter[str] = Counter()

    def send(self, items: list[Claimed], settled: list[Claimed]) -> list[Claimed]:
        """Send items, writing every SUB_BATCH settled ones; return those to resend as tickles.

        settled are items already decided without sending (written first).
        """
        by_id = {item.id: item for item in items}
        for start in range(0, len(settled), SUB_BATCH):
            self.write(settled[start : start + SUB_BATCH])
        resend: list[Claimed] = []
        requests = _requests(items, self.now, self.tries)
        # An item whose request could not be built has its result already.
        built = {request.key for request in requests}
        unbuilt = [item for item in items if item.id not in built]
        for start in range(0, len(unbuilt), SUB_BATCH):
            self.write(unbuilt[start : start + SUB_BATCH])
        wait = current_app.config["DELIVERY_WRITE_WAIT_SECONDS"]
        for chunk in _sender().send_in_chunks(requests, SUB_BATCH, max_wait=wait):
            done = []
            for result in chunk:
                self.tries[result.key].append(result)
                item = by_id[result.key]
                if result.outcome is Outcome.TOO_LARGE and not item.tickle:
                    resend.append(item)
                else:
                    done.append(item)
            self.write(done)
        return resend

    def send_other(self, items: list[Claimed]) -> None:
        """Send e-mail and SMS deliveries through their channel, a sub-batch at a time."""
        for start in range(0, len(items), SUB_BATCH):
            chunk = items[start : start + SUB_BATCH]
            results = channels.send(chunk, self.now)
            for result in results:
                self.tries[result.key].append(result)
            self.write(chunk)
            channels.after_write(chunk, results)

    def write(self, items: Sequence[Claimed]) -> None:
        """Plan and write what became of items, in one transaction."""
        if not items:
            return
        # Timed from now, when the answers are in: a Retry-After counts from its answer.
        plan = plan_batch(items, self.tries, max(self.now, utcnow()), self.settings)
        write_plan(plan)
        self.counts.update(plan.counts)
        # Scheduled as soon as written, not when the whole batch is done: a Retry-After: 1
        # must not wait for the batch's slowest request.
        if plan.retries:
            schedule_retries(
                ((i, when) for when, ids in plan.retries.items() for i in ids), self.now
            )
        for delivery_id, endpoint, error in plan.config_errors:
            # Our keys or JWT are wrong: nobody will get anything until an operator acts.
            log.error(
                "push service %s refused delivery %s (%s): check VAPID keys and subject",
                origin_of(endpoint),
                delivery_id,
                error,
            )


def schedule_retries(due: Iterable[tuple[int, datetime]], now: datetime) -> int:
    """Schedule (id, due time) pairs: in this worker's retry lane when due soon, else as RQ jobs.

    Returns the RQ jobs scheduled. RQ's scheduler keeps whole seconds and starts a job at the
    start of its second, so each job is due at the end of the second its deliveries fall due
    in: never before them, at most a second after. Retries falling due together (a 429 for a
    whole batch) share a job, or a lane entry.
    """
    lane = current_lane()
    later: list[tuple[int, datetime]] = []
    soon: dict[datetime, list[int]] = defaultdict(list)
    for delivery_id, when in due:
        if lane is not None and lane.takes(when):
            soon[when].append(delivery_id)
        else:
            later.append((delivery_id, when))
    for when, ids in soon.items():
        assert lane is not None
        if not lane.add(when, ids):  # it closed meanwhile (a warm shutdown)
            later.extend((i, when) for i in ids)
    return schedule_jobs(later, now)


def schedule_jobs(due: Iterable[tuple[int, datetime]], now: datetime) -> int:
    """Schedule RQ delivery jobs for (id, due time) pairs, one per whole second; return jobs."""
    by_second: dict[datetime, list[int]] = defaultdict(list)
    for delivery_id, when in due:
        second = when.replace(microsecond=0)
        by_second[second if second == when else second + timedelta(seconds=1)].append(delivery_id)
    size = current_app.config["DELIVERY_BATCH_SIZE"]
    jobs = 0
    for when, ids in sorted(by_second.items()):
        for start in range(0, len(ids), size):
            _schedule_retry(sorted(ids[start : start + size]), when, now)
            jobs += 1
    return jobs


def _schedule_retry(ids: list[int], when: datetime, now: datetime) -> None:
    try:
        # At the front once due: a retry is already late, and must not wait behind a backlog
        # of fresh batches (the chaos bench measured 20 s and more behind 10,000 of them).
        queue(DELIVERY_QUEUE).enqueue_at(
            when,
            "webpush_server.jobs.delivery.deliver_batch",
            ids,
            result_ttl=0,
            meta=job_meta(),
            at_front=True,
        )
    except Exception:
        # The rows say when they are due; the sweeper will enqueue them.
        log.warning("could not schedule a retry of %d deliveries", len(ids), exc_info=True)


@contextmanager
def retry_lane(app, enabled: bool = True) -> Iterator[RetryLane | None]:
    """Run this worker's retry lane while the block runs (jobs/lane.py); stop it after.

    Off with RETRY_LANE_THREADS = 0 or not enabled (a burst worker): retries are RQ jobs.
    """
    config = app.config
    if not enabled or config["RETRY_LANE_THREADS"] <= 0:
        yield None
        return
    lane = RetryLane(
        app,
        deliver,
        lambda left: schedule_jobs(left, utcnow()),
        horizon=float(config["RETRY_LANE_SECONDS"]),
        threads=int(config["RETRY_LANE_THREADS"]),
        gather=float(config["RETRY_LANE_GATHER_SECONDS"]),
        batch_size=int(config["DELIVERY_BATCH_SIZE"]),
        thread_setup=thread_sender,
    ).start()
    app.extensions["retry_lane"] = lane
    try:
        yield lane
    finally:
        # New retries go to RQ from here on; what the lane still holds is handed over too.
        app.extensions.pop("retry_lane", None)
        lane.stop(float(config["RETRY_LANE_STOP_SECONDS"]))

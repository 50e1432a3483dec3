"""Record what became of a claimed batch: plan every row to write, then write them at once.

plan_batch() is pure: plain values in, plain values out, no database, clock or configuration,
so the bookkeeping of every outcome is unit-tested on its own. write_plan() applies a plan in
one transaction with Core statements (executemany), not ORM objects: building three entities
per row cost more than encrypting it.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, update

from .. import metrics
from ..database import insert_rows
from ..extensions import db
from ..notifications.models import CHANNELS, Delivery, DeliveryAttempt
from ..push.models import Subscription
from ..push.policy import Outcome, RetrySettings, next_state
from ..push.sender import PushResult, origin_of
from .claim import Claimed

MAX_ERROR = 500  # the length of delivery.last_error and delivery_attempt.error
# Attempt rows per INSERT: 8 values each stays far inside SQLite's bound-value limit.
ATTEMPT_ROWS = 500


@dataclass(frozen=True, slots=True)
class DeliveryUpdate:
    """A delivery's state after this job."""

    id: int
    status: str
    attempts: int
    tickle: bool
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Device:
    """A subscription as we sent to it: deleted only if it still holds these values."""

    id: int
    endpoint: str
    p256dh: str
    auth: str


@dataclass(slots=True)
class Plan:
    """Every row a batch's results call for, and what to do after the commit."""

    at: datetime
    deliveries: list[DeliveryUpdate] = field(default_factory=list)
    attempts: list[dict] = field(default_factory=list)  # delivery_attempt rows
    succeeded: set[int] = field(default_factory=set)  # subscription ids that took a push
    failed: set[int] = field(default_factory=set)  # subscription ids whose push failed
    gone: list[Device] = field(default_factory=list)  # compare-and-delete
    retries: dict[datetime, list[int]] = field(default_factory=dict)  # due time: delivery ids
    counts: dict[str, int] = field(default_factory=dict)  # new status: deliveries
    config_errors: list[tuple[int, str, str | None]] = field(default_factory=list)
    # (push service origin, outcome) → deliveries, for the metrics; pending counts as retrying.
    tally: dict[tuple[str, str], int] = field(default_factory=dict)


def plan_batch(
    claimed: Sequence[Claimed],
    tries: Mapping[int, Sequence[PushResult]],
    now: datetime,
    settings: RetrySettings,
    rng: random.Random | None = None,
) -> Plan:
    """Turn claimed deliveries and their results (in order, per delivery id) into a plan.

    Args:
        claimed: the deliveries as claimed; `attempts` counts the claim, `tickle` says what
            was sent last.
        tries: every result of this job per delivery, the last one deciding.
        now: when the results came in.
        settings: the retry bound and backoff.
        rng: the source of backoff jitter (tests pass a seeded one).
    """
    plan = Plan(at=now)
    counts: dict[str, int] = defaultdict(int)
    retries: dict[datetime, list[int]] = defaultdict(list)
    tally: dict[tuple[str, str], int] = defaultdict(int)
    for item in claimed:
        # E-mail and SMS count under their channel's name where push names its service.
        origin = origin_of(item.endpoint) if item.endpoint else None
        if item.channel != "push":
            origin = item.channel
        results = tries[item.id]
        # claim() counted one attempt; a tickle resend in the same job is one more.
        first_number = item.attempts
        attempts = item.attempts + len(results) - 1
        result = results[-1]
        status, next_at = next_state(
            result.outcome, attempts, now, settings, result.retry_after, rng
        )
        if status == "pending" and next_at is not None:
            retries[next_at].append(item.id)
        if result.outcome is Outcome.SENT and item.subscription_id is not None:
            plan.succeeded.add(item.subscription_id)
        elif result.outcome is Outcome.GONE and item.subscription_id is not None:
            # Compare against the endpoint and keys we sent to, read when we claimed (a
            # device that still exists has all three).
            assert item.endpoint and item.p256dh and item.auth
            plan.gone.append(Device(item.subscription_id, item.endpoint, item.p256dh, item.auth))
        elif item.subscription_id is not None and result.outcome is not Outcome.EXPIRED:
            plan.failed.add(item.subscription_id)
        if result.outcome is Outcome.CONFIG_ERROR:
            plan.config_errors.append((item.id, item.endpoint or "", result.error))
        counts[status] += 1
        tally[(origin or "none", "retrying" if status == "pending" else status)] += 1
        plan.deliveries.append(
            DeliveryUpdate(
                id=item.id,
                status=status,
                attempts=attempts,
                tickle=item.tickle,
                next_attempt_at=next_at,
                last_status_code=result.status,
                last_error=_clip(result.error),
                sent_at=now if status == "sent" else None,
            )
        )
        plan.attempts.extend(
            {
                "delivery_id": item.id,
                "attempt": first_number + offset,
                "outcome": attempt.outcome.value,
                "status_code": attempt.status,
                "error": _clip(attempt.error),
                "at": now,
                "origin": origin,
                "duration_ms": None if attempt.seconds is None else attempt.seconds * 1000,
            }
            for offset, attempt in enumerate(results)
        )
    plan.counts = dict(counts)
    plan.retries = dict(retries)
    plan.tally = dict(tally)
    return plan


def _clip(error: str | None) -> str | None:
    return error[:MAX_ERROR] if error else None


def _channel_of(origin: str) -> str:
    return origin if origin in ("email", "sms") else "push"


_D, _S = Delivery.__table__.c, Subscription.__table__.c
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
_COMPARE_AND_DELETE = delete(Subscription.__table__).where(
    and_(
        _S.id == bindparam("s_id"),
        _S.endpoint == bindparam("s_endpoint"),
        _S.p256dh == bindparam("s_p256dh"),
        _S.auth == bindparam("s_auth"),
    )
)


def write_plan(plan: Plan) -> None:
    """Write a plan in one transaction and commit it.

    One statement per group of deliveries that end alike (a sub-batch of sends is one
    UPDATE … WHERE id IN), one multi-row INSERT of the attempts, on the session's connection:
    per-row parameters through the ORM cost more than the rows' encryption.
    """
    now = plan.at
    connection = db.session.connection()
    groups: dict[tuple, list[int]] = defaultdict(list)
    for d in plan.deliveries:
        groups[
            (
                d.status,
                d.attempts,
                d.tickle,
                d.next_attempt_at,
                d.last_status_code,
                d.last_error,
                d.sent_at,
            )
        ].append(d.id)
    single = []
    for (status, attempts, tickle, next_at, code, error, sent_at), ids in groups.items():
        values = {
            "status": status,
            "attempts": attempts,
            "tickle": tickle,
            "next_attempt_at": next_at,
            "last_status_code": code,
            "last_error": error,
            "sent_at": sent_at,
        }
        if len(ids) > 1:
            connection.execute(
                update(Delivery.__table__).where(_D.id.in_(ids)).values(claim_token=None, **values)
            )
        else:
            single.append({"b_id": ids[0], **{f"b_{k}": v for k, v in values.items()}})
    if single:
        connection.execute(_UPDATE_DELIVERY, single)
    for start in range(0, len(plan.attempts), ATTEMPT_ROWS):
        insert_rows(DeliveryAttempt.__table__, plan.attempts[start : start + ATTEMPT_ROWS])
    if plan.succeeded:
        connection.execute(
            update(Subscription.__table__)
            .where(_S.id.in_(sorted(plan.succeeded)))
            .values(last_success_at=now, failure_count=0)
        )
    if plan.failed:
        connection.execute(
            update(Subscription.__table__)
            .where(_S.id.in_(sorted(plan.failed)))
            .values(last_failure_at=now, failure_count=_S.failure_count + 1)
        )
    if plan.gone:
        # The browser may have re-subscribed meanwhile (same row, new keys): that row stays.
        connection.execute(
            _COMPARE_AND_DELETE,
            [
                {"s_id": g.id, "s_endpoint": g.endpoint, "s_p256dh": g.p256dh, "s_auth": g.auth}
                for g in plan.gone
            ],
        )
    db.session.commit()
    # Counted once committed: a rolled-back plan counts nothing (its rows will be sent again).
    for channel in CHANNELS:
        tally = {key: n for key, n in plan.tally.items() if _channel_of(key[0]) == channel}
        if tally:
            metrics.count_deliveries(tally, channel)
    metrics.observe_sends(
        (row["origin"], row["duration_ms"] / 1000)
        for row in plan.attempts
        if row["duration_ms"] is not None and row["origin"]
    )

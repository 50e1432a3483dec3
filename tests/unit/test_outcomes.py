"""Planning what a batch's results write, on plain values: no database, no app."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from webpush_server.jobs.claim import Claimed
from webpush_server.jobs.outcomes import Device, plan_batch
from webpush_server.push.policy import Outcome, RetrySettings
from webpush_server.push.sender import PushResult

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SETTINGS = RetrySettings(max_attempts=3, base_seconds=10.0, max_seconds=600.0)


def claimed(delivery_id: int, subscription_id: int | None, attempts: int = 1, tickle=False):
    return Claimed(
        id=delivery_id,
        attempts=attempts,
        tickle=tickle,
        subscription_id=subscription_id,
        endpoint=f"https://fcm.googleapis.com/fcm/send/{subscription_id}",
        p256dh=f"p{subscription_id}",
        auth=f"a{subscription_id}",
        notification_id=100,
        kind="test",
        title="t",
        body="b",
        url="/",
        tag="tag",
        urgency="high",
        topic=None,
        expires_at=NOW + timedelta(hours=1),
        created_at=NOW - timedelta(minutes=1),
    )


def test_each_outcome_plans_its_rows():
    batch = [
        claimed(1, 11),  # sent
        claimed(2, 12),  # gone: compare-and-delete
        claimed(3, 13),  # 500: retry later
        claimed(4, 14, attempts=3),  # 500 on the last attempt: failed
        claimed(5, 15),  # 403: failed loudly, subscription kept
        claimed(6, 16, tickle=True),  # 413, then sent as a tickle
        claimed(7, None),  # the device was removed before sending
        claimed(8, 18),  # expired before sending
    ]
    tries = {
        1: [PushResult(1, Outcome.SENT, 201)],
        2: [PushResult(2, Outcome.GONE, 410, "HTTP 410: gone")],
        3: [PushResult(3, Outcome.TRANSIENT, 500, "HTTP 500: oops")],
        4: [PushResult(4, Outcome.TRANSIENT, 500, "HTTP 500: oops")],
        5: [PushResult(5, Outcome.CONFIG_ERROR, 403, "HTTP 403: bad jwt")],
        6: [PushResult(6, Outcome.TOO_LARGE, 413, "HTTP 413"), PushResult(6, Outcome.SENT, 201)],
        7: [PushResult(7, Outcome.GONE, error="device was removed")],
        8: [PushResult(8, Outcome.EXPIRED, error="expired before sending")],
    }
    plan = plan_batch(batch, tries, NOW, SETTINGS, random.Random(1))

    by_id = {d.id: d for d in plan.deliveries}
    assert {i: d.status for i, d in by_id.items()} == {
        1: "sent",
        2: "gone",
        3: "pending",
        4: "failed",
        5: "failed",
        6: "sent",
        7: "gone",
        8: "expired",
    }
    assert plan.counts == {"sent": 2, "gone": 2, "pending": 1, "failed": 2, "expired": 1}
    assert by_id[1].sent_at == NOW and by_id[3].sent_at is None
    assert (by_id[4].last_status_code, by_id[4].last_error) == (500, "HTTP 500: oops")
    # The tickle resend is one more attempt of the same delivery, numbered after the claim's.
    assert (by_id[6].attempts, by_id[6].tickle) == (2, True)
    assert [(a["attempt"], a["outcome"]) for a in plan.attempts if a["delivery_id"] == 6] == [
        (1, "too_large"),
        (2, "sent"),
    ]
    assert len(plan.attempts) == 9
    assert all(a["at"] == NOW for a in plan.attempts)

    (due,) = plan.retries
    assert plan.retries[due] == [3]
    assert by_id[3].next_attempt_at == due
    assert NOW + timedelta(seconds=5) <= due <= NOW + timedelta(seconds=10)

    assert plan.succeeded == {11, 16}
    assert plan.gone == [Device(12, "https://fcm.googleapis.com/fcm/send/12", "p12", "a12")]
    # A failure counts against the device; an expiry is not the device's fault.
    assert plan.failed == {13, 14, 15}
    assert [(i, error) for i, _endpoint, error in plan.config_errors] == [(5, "HTTP 403: bad jwt")]


def test_errors_are_clipped_to_the_column():
    plan = plan_batch(
        [claimed(1, 11)],
        {1: [PushResult(1, Outcome.CONFIG_ERROR, 400, "x" * 2000)]},
        NOW,
        SETTINGS,
    )
    assert len(plan.deliveries[0].last_error) == 500
    assert len(plan.attempts[0]["error"]) == 500


def test_planning_leaves_the_claimed_items_as_they_were():
    item = claimed(1, 11, attempts=2)
    tries = {1: [PushResult(1, Outcome.TOO_LARGE, 413), PushResult(1, Outcome.SENT, 201)]}
    plan = plan_batch([item], tries, NOW, SETTINGS)
    assert plan.deliveries[0].attempts == 3
    assert item.attempts == 2

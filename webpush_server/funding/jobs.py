"""Funding's scheduled jobs: close campaigns, remind followers, remind and expire coupons.

Each reads in chunks (keyset pagination) and commits per chunk, so memory stays flat and a
killed run loses at most one uncommitted chunk; dedupe keys make reruns send nothing twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from ..jobs.context import app_context
from ..jobs.schedule import ScheduledJob, register
from ..timeutil import utcnow
from . import services

log = logging.getLogger(__name__)

CAMPAIGN_CHUNK = 100
COUPON_CHUNK = 500
COUPON_REMINDER_TIME = (9, 0)  # local APP_TIMEZONE wall clock

register(
    ScheduledJob(
        "close-due-campaigns",
        "* * * * *",
        "webpush_server.funding.jobs.close_due_campaigns",
        "close campaigns past their deadline: coupons and notices to backers",
    )
)
register(
    ScheduledJob(
        "remind-campaign-deadlines",
        "0 * * * *",
        "webpush_server.funding.jobs.remind_campaign_deadlines",
        "remind followers who have not backed, within 24 h of the deadline",
    )
)
register(
    ScheduledJob(
        "expire-coupons",
        "5 * * * *",
        "webpush_server.funding.jobs.expire_coupons",
        "mark coupons past their expiry as expired",
    )
)
# 09:00 in the default Asia/Seoul is 00:00 UTC; creating the app re-registers the line for
# the configured APP_TIMEZONE (funding.schedule_daily).
register(
    ScheduledJob(
        "notify-expiring-coupons",
        "0 0 * * *",
        "webpush_server.funding.jobs.notify_expiring_coupons",
        "remind coupon owners, daily at 09:00 Asia/Seoul",
    )
)


def close_due_campaigns(now: datetime | None = None) -> dict[str, int]:
    """Close every open campaign past its deadline, then tell each backer how it ended."""
    with app_context():
        now = now or utcnow()
        counts = {"succeeded": 0, "failed": 0, "notified": 0}
        after = 0
        while ids := services.due_campaign_ids(now, after, CAMPAIGN_CHUNK):
            for campaign_id in ids:
                status = services.close_campaign(campaign_id, now)
                if status:
                    counts[status] += 1
            after = ids[-1]
        # Separate pass: it also finishes campaigns a killed run closed but did not notify.
        after = 0
        while ids := services.unnotified_closed_campaign_ids(after, CAMPAIGN_CHUNK):
            for campaign_id in ids:
                counts["notified"] += services.notify_backers(campaign_id)
            after = ids[-1]
        return counts


def remind_campaign_deadlines(now: datetime | None = None) -> int:
    """Tell followers who have not backed that a campaign closes within 24 hours."""
    with app_context():
        now = now or utcnow()
        created = 0
        for campaign_id in services.campaigns_closing_within(now, now + timedelta(hours=24)):
            created += services.remind_followers(campaign_id)
        return created


def notify_expiring_coupons(now: datetime | None = None) -> int:
    """Remind the owner of every active coupon whose last valid day is today or tomorrow."""
    with app_context():
        now = now or utcnow()
        start, until = services.coupon_reminder_window(now)
        created, after = 0, None
        while keys := services.expiring_coupon_ids(start, until, after, COUPON_CHUNK):
            created += services.remind_coupon_owners([coupon_id for _, coupon_id in keys])
            after = keys[-1]
        return created


def expire_coupons(now: datetime | None = None) -> int:
    """Mark every active coupon past its expiry as expired."""
    with app_context():
        now = now or utcnow()
        total = 0
        while True:
            seen, changed = services.expire_coupons_chunk(now)
            total += changed
            if not seen:
                return total

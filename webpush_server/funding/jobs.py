"""Funding's scheduled jobs: close campaigns, remind followers, remind and expire coupons.

Each job owns its scan (a select read in keyset chunks, no transaction left open) and calls
a service that changes one campaign or one chunk of coupons in a transaction of its own, so
memory stays flat and a killed run loses at most one uncommitted item; dedupe keys make
reruns send nothing twice.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from ..database import keyset_ids
from ..jobs.context import app_context
from ..jobs.schedule import ScheduledJob
from ..timeutil import utcnow
from . import services
from .models import Campaign, Coupon
from .timeutil import daily_cron_utc

CAMPAIGN_CHUNK = 100
COUPON_CHUNK = 500
COUPON_REMINDER_TIME = time(9, 0)  # local APP_TIMEZONE wall clock


def scheduled(zone: ZoneInfo, now: datetime) -> list[ScheduledJob]:
    """Return funding's cron entries (UTC); the daily one is 09:00 in zone as of now.

    The daily line uses the zone's offset at now (the scheduler restarts with each deploy);
    zones with daylight saving shift by an hour until the next start.
    """
    at = COUPON_REMINDER_TIME
    return [
        ScheduledJob(
            "close-due-campaigns",
            "* * * * *",
            "webpush_server.funding.jobs.close_due_campaigns",
            "close campaigns past their deadline: coupons and notices to backers",
        ),
        ScheduledJob(
            "remind-campaign-deadlines",
            "0 * * * *",
            "webpush_server.funding.jobs.remind_campaign_deadlines",
            "remind followers who have not backed, within 24 h of the deadline",
        ),
        ScheduledJob(
            "expire-coupons",
            "5 * * * *",
            "webpush_server.funding.jobs.expire_coupons",
            "mark coupons past their expiry as expired",
        ),
        ScheduledJob(
            "notify-expiring-coupons",
            daily_cron_utc(at.hour, at.minute, zone, now),
            "webpush_server.funding.jobs.notify_expiring_coupons",
            f"remind coupon owners, daily at {at:%H:%M} {zone.key}",
        ),
    ]


def close_due_campaigns(now: datetime | None = None) -> dict[str, int]:
    """Close every open campaign past its deadline, then tell each backer how it ended."""
    with app_context():
        now = now or utcnow()
        counts = {"succeeded": 0, "failed": 0, "notified": 0}
        due = select(Campaign.id).where(Campaign.status == "open", Campaign.deadline <= now)
        for ids in keyset_ids(due, Campaign.id, CAMPAIGN_CHUNK):
            for campaign_id in ids:
                status = services.close_campaign(campaign_id, now)
                if status:
                    counts[status] += 1
        # Separate pass: it also finishes campaigns a killed run closed but did not notify.
        unnotified = select(Campaign.id).where(
            Campaign.status.in_(("succeeded", "failed")), Campaign.notified_at.is_(None)
        )
        for ids in keyset_ids(unnotified, Campaign.id, CAMPAIGN_CHUNK):
            for campaign_id in ids:
                counts["notified"] += services.notify_backers(campaign_id)
        return counts


def remind_campaign_deadlines(now: datetime | None = None) -> int:
    """Tell followers who have not backed that a campaign closes within 24 hours."""
    with app_context():
        now = now or utcnow()
        closing = select(Campaign.id).where(
            Campaign.status == "open",
            Campaign.deadline > now,
            Campaign.deadline <= now + timedelta(hours=24),
        )
        return sum(
            services.remind_followers(campaign_id)
            for ids in keyset_ids(closing, Campaign.id, CAMPAIGN_CHUNK)
            for campaign_id in ids
        )


def notify_expiring_coupons(now: datetime | None = None) -> int:
    """Remind the owner of every active coupon whose last valid day is today or tomorrow."""
    with app_context():
        now = now or utcnow()
        start, until = services.coupon_reminder_window(now)
        expiring = select(Coupon.expires_at, Coupon.id).where(
            Coupon.status == "active", Coupon.expires_at > start, Coupon.expires_at <= until
        )
        key = (Coupon.expires_at, Coupon.id)
        return sum(
            services.remind_coupon_owners([coupon_id for _, coupon_id in keys])
            for keys in keyset_ids(expiring, key, COUPON_CHUNK)
        )


def expire_coupons(now: datetime | None = None) -> int:
    """Mark every active coupon past its expiry as expired."""
    with app_context():
        now = now or utcnow()
        past = select(Coupon.expires_at, Coupon.id).where(
            Coupon.status == "active", Coupon.expires_at <= now
        )
        key = (Coupon.expires_at, Coupon.id)
        return sum(
            services.expire_coupons([coupon_id for _, coupon_id in keys])
            for keys in keyset_ids(past, key, 1000)
        )

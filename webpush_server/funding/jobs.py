"""Funding's scheduled jobs: close campaigns, remind followers, remind and expire coupons.

Each is a batch job (jobs.batch): its scan is read in keyset chunks, no transaction left
open, with a checkpoint after each chunk, and a service changes one campaign or one chunk of
coupons in a transaction of its own, so memory stays flat, a killed run resumes from its last
committed chunk and dedupe keys make the redone part send nothing twice.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import partial

from sqlalchemy import select

from ..jobs.batch import BatchJob, Outcome, Step
from ..jobs.schedule import ScheduledJob
from . import services
from .models import Campaign, Coupon

CAMPAIGN_CHUNK = 100
COUPON_CHUNK = 500
COUPON_REMINDER_TIME = time(9, 0)  # local APP_TIMEZONE wall clock


def scheduled() -> list[ScheduledJob]:
    """Return funding's schedule: cron lines in UTC, the coupon reminder daily at 09:00 local.

    The daily job has no UTC cron line: the start-daily-jobs tick computes each day's 09:00 in
    APP_TIMEZONE, so daylight saving neither shifts nor repeats it.
    """
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
            "remind followers who have not backed, 48 h and 24 h before the deadline",
        ),
        ScheduledJob(
            "expire-coupons",
            "5 * * * *",
            "webpush_server.funding.jobs.expire_coupons",
            "mark coupons past their expiry as expired",
        ),
        ScheduledJob(
            "notify-expiring-coupons",
            None,
            "webpush_server.funding.jobs.notify_expiring_coupons",
            "remind coupon owners of coupons expiring today or tomorrow",
            daily_at=COUPON_REMINDER_TIME,
        ),
    ]


def _close_due_campaigns(at: datetime) -> list[Step]:
    """Close every open campaign past its deadline, then tell each backer how it ended."""
    due = select(Campaign.id).where(Campaign.status == "open", Campaign.deadline <= at)
    # Second step: it also finishes campaigns a killed run closed but did not notify.
    unnotified = select(Campaign.id).where(
        Campaign.status.in_(("succeeded", "failed")), Campaign.notified_at.is_(None)
    )
    return [
        Step(
            "closed",
            due,
            Campaign.id,
            lambda campaign_id: services.close_campaign(campaign_id, at),
            CAMPAIGN_CHUNK,
        ),
        Step("notified", unnotified, Campaign.id, services.notify_backers, CAMPAIGN_CHUNK),
    ]


def _closing_counts(outcome: Outcome) -> dict[str, int]:
    return {key: outcome.counts[key] for key in ("succeeded", "failed", "notified")}


# Each reminder's window before the deadline: (later bound, earlier bound] in hours. The job
# runs hourly, so a campaign enters each window once; the dedupe key per reminder does the rest.
DEADLINE_REMINDERS = ((48, 24), (24, 0))


def _remind_campaign_deadlines(at: datetime) -> list[Step]:
    """Tell followers who have not backed that a campaign closes within 48 h, then 24 h."""
    steps = []
    for hours, until in DEADLINE_REMINDERS:
        closing = select(Campaign.id).where(
            Campaign.status == "open",
            Campaign.deadline > at + timedelta(hours=until),
            Campaign.deadline <= at + timedelta(hours=hours),
        )
        steps.append(
            Step(
                f"reminded_{hours}h",
                closing,
                Campaign.id,
                partial(services.remind_followers, hours=hours),
                CAMPAIGN_CHUNK,
            )
        )
    return steps


def _coupon_id(key: tuple[datetime, int]) -> int:
    return key[1]


def _notify_expiring_coupons(at: datetime) -> list[Step]:
    """Remind the owner of every active coupon whose last valid day is today or tomorrow."""
    start, until = services.coupon_reminder_window(at)
    expiring = select(Coupon.expires_at, Coupon.id).where(
        Coupon.status == "active", Coupon.expires_at > start, Coupon.expires_at <= until
    )
    return [
        Step(
            "reminded",
            expiring,
            (Coupon.expires_at, Coupon.id),
            services.remind_coupon_owners,
            COUPON_CHUNK,
            batch=True,
            item=_coupon_id,
        )
    ]


def _expire_coupons(at: datetime) -> list[Step]:
    """Mark every active coupon past its expiry as expired."""
    past = select(Coupon.expires_at, Coupon.id).where(
        Coupon.status == "active", Coupon.expires_at <= at
    )
    return [
        Step(
            "expired",
            past,
            (Coupon.expires_at, Coupon.id),
            services.expire_coupons,
            1000,
            batch=True,
            item=_coupon_id,
        )
    ]


close_due_campaigns = BatchJob("close-due-campaigns", _close_due_campaigns, _closing_counts)
remind_campaign_deadlines = BatchJob("remind-campaign-deadlines", _remind_campaign_deadlines)
notify_expiring_coupons = BatchJob("notify-expiring-coupons", _notify_expiring_coupons)
expire_coupons = BatchJob("expire-coupons", _expire_coupons)

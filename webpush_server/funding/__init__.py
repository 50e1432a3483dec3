"""Crowdfunding: campaigns, pledges, follows and coupons, with their notices and jobs."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Flask

# Imported for their side effects: the recipients table and the cron table.
from . import jobs, notices  # noqa: F401


def schedule_daily(app: Flask) -> None:
    """Register notify-expiring-coupons at 09:00 APP_TIMEZONE, as a UTC cron line.

    The line uses the zone's offset when the app starts (the scheduler restarts with each
    deploy); zones with daylight saving shift by an hour until the next start.
    """
    from ..jobs.schedule import ScheduledJob, register
    from ..timeutil import utcnow
    from .timeutil import daily_cron_utc

    hour, minute = jobs.COUPON_REMINDER_TIME
    zone = ZoneInfo(app.config["APP_TIMEZONE"])
    register(
        ScheduledJob(
            "notify-expiring-coupons",
            daily_cron_utc(hour, minute, zone, utcnow()),
            "webpush_server.funding.jobs.notify_expiring_coupons",
            f"remind coupon owners, daily at {hour:02}:{minute:02} {zone.key}",
        )
    )

"""Crowdfunding: campaigns, pledges, follows and coupons, with their notices and jobs."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Add funding's pages and API, its scheduled jobs and who it tells what.

    The daily coupon reminder is built here, for this app's APP_TIMEZONE.
    """
    from zoneinfo import ZoneInfo

    from ..jobs.schedule import register
    from ..notifications.record import register_recipients
    from ..timeutil import utcnow
    from . import api, jobs, notices, views

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    register(app, *jobs.scheduled(ZoneInfo(app.config["APP_TIMEZONE"]), utcnow()))
    register_recipients(app, notices.RECIPIENTS)

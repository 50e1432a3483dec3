"""Crowdfunding: campaigns, pledges, follows and coupons, with their notices and jobs."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Add funding's pages and API, its scheduled jobs and who it tells what."""
    from ..jobs.schedule import register
    from ..notifications.record import register_recipients
    from . import api, jobs, notices, views

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    register(app, *jobs.scheduled())
    register_recipients(app, notices.RECIPIENTS)

"""Background work: delivery batches, the cron table and the worker commands."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Enqueue delivery jobs after each commit; schedule the sweeper; add `flask jobs`."""
    from ..notifications.outbox import hooks
    from . import cli
    from .queues import enqueue_deliveries
    from .schedule import ScheduledJob, register

    hooks(app).enqueue = enqueue_deliveries
    register(
        app,
        ScheduledJob(
            "sweep-outbox",
            "* * * * *",
            "webpush_server.jobs.delivery.sweep_outbox",
            "re-enqueue deliveries left pending or claimed by a dead worker",
        ),
    )
    app.register_blueprint(cli.bp)

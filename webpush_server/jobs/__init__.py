"""Background work: delivery batches, the cron table and the worker commands."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Enqueue delivery jobs after each commit; schedule the sweeper and prune; `flask jobs`."""
    from ..notifications.outbox import hooks
    from . import cli, retention
    from .queues import enqueue_deliveries
    from .schedule import ScheduledJob, register

    for name, value in retention.DEFAULTS.items():
        app.config.setdefault(name, value)
    hooks(app).enqueue = enqueue_deliveries
    register(
        app,
        ScheduledJob(
            "sweep-outbox",
            "* * * * *",
            "webpush_server.jobs.delivery.sweep_outbox",
            "re-enqueue deliveries left pending or claimed by a dead worker",
        ),
        ScheduledJob(
            "prune",
            "30 18 * * *",
            "webpush_server.jobs.retention.prune",
            "delete old delivery attempts, finished deliveries and read notifications",
        ),
    )
    app.register_blueprint(cli.bp)

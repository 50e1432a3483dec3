"""Background work: delivery batches, the schedule, job executions and the worker commands."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Enqueue delivery jobs after each commit; schedule the sweeper, the daily tick and prune;
    add `flask jobs` and the admins' /admin/jobs page."""
    from ..notifications.outbox import hooks
    from . import cli, delivery, lane, models, retention, views  # noqa: F401 - models: tables
    from .queues import connection, enqueue_deliveries
    from .schedule import ScheduledJob, register

    for defaults in (retention.DEFAULTS, lane.DEFAULTS, delivery.DEFAULTS):
        for name, value in defaults.items():
            app.config.setdefault(name, value)
    hooks(app).enqueue = enqueue_deliveries
    # MULTI/EXEC, as RQ's own enqueue_many pipeline: a job is saved whole with its queue entry.
    hooks(app).pipeline = lambda: connection().pipeline()
    register(
        app,
        # A plain job, not a batch job: each sweep is whole on its own and repeats nothing, so
        # an instance a minute would record nothing worth resuming.
        ScheduledJob(
            "sweep-outbox",
            "* * * * *",
            "webpush_server.jobs.delivery.sweep_outbox",
            "re-enqueue deliveries left pending or claimed by a dead worker",
        ),
        ScheduledJob(
            "start-daily-jobs",
            "* * * * *",
            "webpush_server.jobs.batch.start_daily_jobs",
            "start each daily job once its local time has come today in APP_TIMEZONE",
        ),
        ScheduledJob(
            "prune",
            "30 18 * * *",
            "webpush_server.jobs.retention.prune",
            "delete old delivery attempts, finished deliveries and read notifications",
        ),
    )
    app.register_blueprint(cli.bp)
    app.register_blueprint(views.bp)

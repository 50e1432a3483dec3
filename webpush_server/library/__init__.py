"""The library: books, copies, loans and the hold queue."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Add the library's pages and API, its scheduled jobs and who it tells what."""
    from ..jobs.schedule import register
    from ..notifications.record import register_recipients
    from . import api, jobs, notices, views

    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    register(app, *jobs.scheduled())
    register_recipients(app, notices.RECIPIENTS)

"""The service API: API keys, /api/v1 (trigger, status, cancel), the OpenAPI document."""

from flask import Flask

DEFAULTS = {
    # Requests per API key per window (all /api/v1 endpoints together).
    "SERVICE_API_RATE_LIMIT": 600,
    "SERVICE_API_RATE_WINDOW_SECONDS": 60,
}


def init_app(app: Flask) -> None:
    """Add /api/v1 (CSRF-exempt: bearer keys only), /admin/api-keys, `flask apikey`, the
    OpenAPI document and docs, and the job that releases scheduled requests."""
    from ..extensions import csrf
    from ..jobs.schedule import ScheduledJob, register
    from . import admin, api, cli, models, openapi  # noqa: F401 - models: the tables

    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    # Triggers recording at once per process (api._slots): one on SQLite, whose single
    # writer they queue for anyway; no limit (0) on PostgreSQL, whose round trips they overlap
    # (measured there: 1 slot 2,179 recorded/s, 4 slots 2,498-2,607, no limit 2,384-2,957).
    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    app.config.setdefault("SERVICE_API_CONCURRENCY", 1 if sqlite else 0)
    csrf.exempt(api.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(cli.bp)
    app.register_blueprint(openapi.bp)
    register(
        app,
        ScheduledJob(
            "release-scheduled",
            "* * * * *",
            "webpush_server.service_api.services.release_due",
            "show and send service API notifications whose send_at has come",
        ),
    )

"""Operations: health and readiness, request ids and logs, metrics, the admin dashboard."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Request ids and logs; health, readiness and metrics; /admin/ and /admin/rq."""
    from . import health, metrics_view, requests, rq, views

    requests.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics_view.bp)
    app.register_blueprint(views.bp)
    rq.init_app(app, views.admins_only)

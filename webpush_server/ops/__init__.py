"""Operations: health and readiness, request ids and logs, metrics, the admin dashboard."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Request ids and logs; /healthz, /readyz and /metrics."""
    from . import health, metrics_view, requests

    requests.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics_view.bp)

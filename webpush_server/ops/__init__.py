"""Operations: health and readiness, request ids and logs, metrics, the admin dashboard."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Request ids and logs; /healthz and /readyz."""
    from . import health, requests

    requests.init_app(app)
    app.register_blueprint(health.bp)

"""Operations: health and readiness, request ids and logs, metrics, the admin dashboard."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Add /healthz and /readyz."""
    from . import health

    app.register_blueprint(health.bp)

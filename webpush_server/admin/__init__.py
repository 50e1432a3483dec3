"""Staff tools for admins: the audit log (the dashboard and the rest join here later)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Add /admin/audit and GET /api/admin/audit."""
    from . import views

    app.register_blueprint(views.pages)
    app.register_blueprint(views.api)

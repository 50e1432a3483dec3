"""The inbox and the outbox: who is told what, and what leaves after the commit."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Install the outbox hand-over and add the inbox pages and API."""
    from . import api, outbox, views

    outbox.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)

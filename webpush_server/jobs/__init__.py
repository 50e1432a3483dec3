"""Background work: delivery batches, the cron table and the worker commands."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Let the outbox enqueue delivery jobs after each commit."""
    from .queues import enqueue_deliveries

    app.extensions["enqueue_deliveries"] = enqueue_deliveries

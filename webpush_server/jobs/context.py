"""Run job code inside an application context, entered in the job, never at import."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from flask import Flask, has_app_context

_app: Flask | None = None


def app_context() -> AbstractContextManager:
    """Return the current app context, or one of an app created once per process."""
    global _app
    if has_app_context():
        return nullcontext()
    if _app is None:
        from .. import create_app

        _app = create_app()
    return _app.app_context()

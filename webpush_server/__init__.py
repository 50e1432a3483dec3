"""webpush-server: a Web Push notification backend for a library and a crowdfunding site."""

from __future__ import annotations

import os

from flask import Flask

from . import config as settings
from .extensions import csrf, db, migrate, sock


def create_app(test_config: dict | None = None, *, instance_path: str | None = None) -> Flask:
    """Create and configure the app.

    The instance folder (keys, secrets, the SQLite file) is instance_path, else the
    INSTANCE_PATH environment variable, else the checkout's instance/. A test app reads no
    instance/config.py: what it runs with is its test mapping alone.
    """
    app = Flask(
        __name__,
        instance_path=instance_path or os.environ.get("INSTANCE_PATH") or None,
        instance_relative_config=True,
        static_folder="../static",
        template_folder="../templates",
    )
    register_config(app, test_config)
    register_extensions(app)
    register_blueprints(app)
    register_cli(app)
    register_errors(app)
    return app


def register_config(app: Flask, test_config: dict | None) -> None:
    """Defaults, then instance/config.py (local development), the environment, the tests."""
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(settings.defaults(app.instance_path))
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    settings.from_environment(app.config)
    # Any other setting as FLASK_<NAME>, values parsed as JSON (FLASK_DELIVERY_BATCH_SIZE=500).
    app.config.from_prefixed_env()
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = settings.load_secret_key(app.instance_path)
    app.config["VAPID_SUBJECT"] = settings.validate_vapid_subject(app.config.get("VAPID_SUBJECT"))
    app.config.setdefault("MAX_CONTENT_LENGTH", 64 * 1024)


def register_extensions(app: Flask) -> None:
    """Bind the extensions and the SQLite pragmas."""
    from . import auth, jobs, push, realtime

    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    csrf.init_app(app)
    _csrf_after_login_check(app)
    sock.init_app(app)
    auth.init_app(app)
    push.init_app(app)
    jobs.init_app(app)
    realtime.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            _sqlite_pragmas(db.engine)


def _csrf_after_login_check(app: Flask) -> None:
    """Check CSRF on every unsafe request, but let anonymous API calls reach their 401.

    An anonymous request carries no session a forger could ride on, and docs/api.md promises
    401 (not a CSRF 400) to clients that are not logged in.
    """
    from flask import request
    from flask_login import current_user

    app.config["WTF_CSRF_CHECK_DEFAULT"] = False

    @app.before_request
    def protect() -> None:
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return
        if request.path.startswith("/api/") and not current_user.is_authenticated:
            return
        csrf.protect()


def _sqlite_pragmas(engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the web process read while a worker writes; the busy timeout makes
        # concurrent writers wait instead of failing; foreign keys are off by default.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def register_blueprints(app: Flask) -> None:
    """Pages and the JSON API."""
    from . import main
    from .auth import views as auth_views
    from .funding import api as funding_api
    from .funding import views as funding_views
    from .library import api as library_api
    from .library import views as library_views
    from .notifications import api as notifications_api
    from .notifications import views as notifications_views
    from .push import api as push_api
    from .realtime import sse, ws

    app.register_blueprint(main.bp)
    app.register_blueprint(auth_views.bp)
    app.register_blueprint(push_api.bp)
    app.register_blueprint(notifications_api.bp)
    app.register_blueprint(notifications_views.bp)
    app.register_blueprint(library_views.bp)
    app.register_blueprint(library_api.bp)
    app.register_blueprint(funding_views.bp)
    app.register_blueprint(funding_api.bp)
    app.register_blueprint(ws.bp)
    app.register_blueprint(sse.bp)


def register_cli(app: Flask) -> None:
    """Command groups: user, vapid, jobs, seed-demo."""
    from . import demo
    from .auth import cli as auth_cli
    from .jobs import cli as jobs_cli
    from .push import cli as push_cli

    app.register_blueprint(auth_cli.bp)
    app.register_blueprint(push_cli.bp)
    app.register_blueprint(jobs_cli.bp)
    app.cli.add_command(demo.seed_demo)


def register_errors(app: Flask) -> None:
    """JSON errors for the API, pages for people."""
    from .errors import register_error_handlers

    register_error_handlers(app)

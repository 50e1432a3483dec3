"""webpush-server: a Web Push notification backend for a library and a crowdfunding site."""

from __future__ import annotations

import os

from flask import Flask

from . import config as settings


def create_app(test_config: dict | None = None, *, instance_path: str | None = None) -> Flask:
    """Create and configure the app: settings, then one init_app per package.

    The instance folder (keys, secrets, the SQLite file) is instance_path, else the
    INSTANCE_PATH environment variable, else the checkout's instance/. A test app reads no
    instance/config.py: what it runs with is its test mapping alone.
    """
    from . import (
        admin,
        auth,
        channels,
        errors,
        extensions,
        funding,
        headers,
        i18n,
        jobs,
        library,
        main,
        notifications,
        ops,
        push,
        realtime,
        service_api,
    )

    app = Flask(
        __name__,
        instance_path=instance_path or os.environ.get("INSTANCE_PATH") or None,
        instance_relative_config=True,
        static_folder="../static",
        template_folder="../templates",
    )
    configure(app, test_config)
    extensions.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    main.init_app(app)
    auth.init_app(app)
    push.init_app(app)
    notifications.init_app(app)
    realtime.init_app(app)
    jobs.init_app(app)
    library.init_app(app)
    funding.init_app(app)
    admin.init_app(app)
    ops.init_app(app)
    service_api.init_app(app)
    channels.init_app(app)
    return app


def configure(app: Flask, test_config: dict | None) -> None:
    """Defaults, then instance/config.py (local development), the environment, the tests."""
    # 0700: the instance folder holds the secret key, the VAPID key and the SQLite file.
    settings.make_instance_dir(app.instance_path)
    app.config.update(settings.defaults(app.instance_path))
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    settings.from_environment(app.config)
    # Any other setting as FLASK_<NAME>, values parsed as JSON (FLASK_DELIVERY_BATCH_SIZE=500).
    app.config.from_prefixed_env()
    if test_config:
        app.config.update(test_config)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A SQLite connection is a file, never dropped by a server: a ping at each checkout
        # is one more statement per transaction for nothing (the delivery path has several).
        options = app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, "pool_pre_ping": False}
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = settings.load_secret_key(app.instance_path)
    app.config["VAPID_SUBJECT"] = settings.validate_vapid_subject(app.config.get("VAPID_SUBJECT"))
    app.config["PUBLIC_URL"] = settings.validate_public_url(app.config.get("PUBLIC_URL"))
    app.config.setdefault("MAX_CONTENT_LENGTH", 64 * 1024)

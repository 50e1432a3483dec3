"""Flask extensions, created unbound and initialised in create_app()."""

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_login import LoginManager, current_user
from flask_migrate import Migrate
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine, MetaData, Table, event
from sqlalchemy.orm import DeclarativeBase

# Named constraints keep Alembic migrations portable between SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

if TYPE_CHECKING:
    # db.Model is built at run time; to the type checker it is this declarative base.
    class Model(Base):
        __abstract__ = True
        __table__: ClassVar[Table]
else:
    Model = db.Model
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
sock = Sock()


def rate_limit_key() -> str:
    """Key a rate limit by the logged-in user, else by the client address."""
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return f"address:{request.remote_addr}"


# One limiter for the process, like db: each app's init_app points it at that app's Redis.
# Limits are declared on the views with a callable, so each app's settings apply.
limiter = Limiter(key_func=rate_limit_key)


def configured_limit(name: str) -> Callable[[], str]:
    """Return a limit that reads the setting name of the app serving the request."""
    return lambda: current_app.config[name]


RATE_LIMIT_DEFAULTS = {
    "RATELIMIT_PUSH_TEST": "5 per minute",
    "RATELIMIT_SUBSCRIPTION_WRITES": "30 per minute",
    "RATELIMIT_PLEDGES": "10 per minute",
    "RATELIMIT_KEY_PREFIX": "webpush:ratelimit",
    # A Redis outage lets requests through (logged) rather than failing every one of them.
    "RATELIMIT_SWALLOW_ERRORS": True,
}


def init_app(app: Flask) -> None:
    """Bind the database, migrations, CSRF and WebSocket extensions, and SQLite's pragmas."""
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    csrf.init_app(app)
    sock.init_app(app)
    _init_limiter(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        _create_private_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
        with app.app_context():
            _sqlite_pragmas(db.engine)


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the web process read while a worker writes; the busy timeout makes
        # concurrent writers wait instead of failing; foreign keys are off by default.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _init_limiter(app: Flask) -> None:
    """Bind the rate limiter to the app's Redis (REDIS_URL or the embedded one)."""
    from .config import ConfigError
    from .redis_server import resolve_url

    for name, value in RATE_LIMIT_DEFAULTS.items():
        app.config.setdefault(name, value)
    if not app.config.get("RATELIMIT_STORAGE_URI"):
        try:
            url = resolve_url(app.config.get("REDIS_URL"), app.instance_path)
        except ConfigError:
            # A command run without Redis (db upgrade, user create) serves no requests.
            url = "memory://"
        app.config["RATELIMIT_STORAGE_URI"] = (
            "redis+unix://" + url[len("unix://") :] if url.startswith("unix://") else url
        )
    limiter.init_app(app)


def _create_private_sqlite_file(uri: str) -> None:
    """Create a missing SQLite file 0600 before SQLite does (it would make it 0644).

    SQLite gives its -wal and -shm files the database file's permissions, so they are
    private too. An empty file is a valid, empty database.
    """
    from sqlalchemy.engine import make_url

    path = make_url(uri).database
    if not path or path == ":memory:" or path.startswith("file:") or os.path.exists(path):
        return
    # Only in a folder that exists (instance/ is made private by configure()): a database
    # URL naming a missing folder is SQLite's error to report, not a folder to create.
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass  # another process created it first, the same way

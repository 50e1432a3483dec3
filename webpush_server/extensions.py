"""Flask extensions, created unbound and initialised in create_app()."""

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_login import LoginManager, current_user
from flask_migrate import Migrate
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
    """Bind the database, migrations and CSRF extensions, and SQLite's pragmas."""
    db.init_app(app)
    migrate.init_app(app, db, render_as_batch=True)
    csrf.init_app(app)
    _init_limiter(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        _create_private_sqlite_file(app.config["SQLALCHEMY_DATABASE_URI"])
        with app.app_context():
            _sqlite_pragmas(db.engine)
            _sqlite_write_queue(db.engine)


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


# Statements that take SQLite's write lock; reads (SELECT, PRAGMA) never wait in the queue.
_READS = ("SELECT", "PRAGMA", "EXPLAIN")
# A writer's commit checkpoints the WAL after every this many commits in its process, once it
# has left the queue; SQLite's own automatic checkpoint (at 1,000 pages) would run inside it.
CHECKPOINT_EVERY = 32
# SQLite's automatic checkpoint, kept as the safety net, in pages (4 KiB): 40 MiB of WAL.
AUTOCHECKPOINT_PAGES = 10_000


def _sqlite_write_queue(engine: Engine) -> None:
    """Make writers from every thread and process wait their turn in a kernel lock queue.

    SQLite's own busy handler polls: a writer that finds the database locked sleeps 1, 2,
    5 … up to 100 ms between tries, so under load some transactions wait long after the lock
    is free while others barge in (measured: p99 2.5 s for 100-recipient API requests from
    two gunicorn processes, 0.3 s with this queue). An exclusive flock() on
    ``<database>-writers``, taken before a transaction's first write and dropped right after
    its commit or rollback, hands the lock over the moment it is free. Python's sqlite3 opens
    the transaction at that first write, so the queue never holds a stale read snapshot. The
    kernel drops a killed process's flock.

    The WAL checkpoint moves out of the queue too: SQLite runs it inside the commit that
    crosses 1,000 pages (about 1.4 ms per API request, amortised, with the next writer
    waiting); here a passive checkpoint follows every CHECKPOINT_EVERY-th commit after the
    lock is passed on, and writers go on meanwhile.
    """
    import fcntl
    import itertools

    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    lock_path = os.path.abspath(path) + "-writers"
    files: dict[int, int] = {}  # id(DBAPI connection) -> its own open lock file
    held: set[int] = set()  # the connections in a write transaction, holding the lock
    commits = itertools.count(1)

    def key(connection: Any) -> int:
        # The dialect is handed the pool's proxy, the events the DBAPI connection itself.
        return id(getattr(connection, "dbapi_connection", connection))

    @event.listens_for(engine, "connect")
    def open_lock_file(dbapi_connection: Any, _record: Any) -> None:
        # One open file per connection: flock() excludes between open files, so two
        # threads of one process queue for each other as two processes do.
        files[key(dbapi_connection)] = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")

    @event.listens_for(engine, "close")
    @event.listens_for(engine, "close_detached")
    def close_lock_file(dbapi_connection: Any, *_args: Any) -> None:
        release(dbapi_connection)
        fd = files.pop(key(dbapi_connection), None)
        if fd is not None:
            os.close(fd)

    @event.listens_for(engine, "invalidate")
    def invalidated(dbapi_connection: Any, *_args: Any) -> None:
        release(dbapi_connection)

    @event.listens_for(engine, "before_cursor_execute")
    def queue_for_writes(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        connection = key(conn.connection.dbapi_connection)
        if connection in held or connection not in files:
            return
        if statement.lstrip()[:7].upper().startswith(_READS):
            return
        fcntl.flock(files[connection], fcntl.LOCK_EX)  # waits without the GIL
        held.add(connection)

    def release(connection: Any) -> bool:
        connection_key = key(connection)
        if connection_key not in held:
            return False
        held.discard(connection_key)
        fcntl.flock(files[connection_key], fcntl.LOCK_UN)
        return True

    # After the commit or rollback itself (the engine's commit event fires before it), so
    # the next writer never finds SQLite's lock still taken.
    dialect = engine.dialect
    do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

    def commit_then_release(connection: Any) -> None:
        try:
            do_commit(connection)
        finally:
            wrote = release(connection)
        if wrote and next(commits) % CHECKPOINT_EVERY == 0:
            cursor = connection.cursor()
            try:
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                cursor.close()

    def rollback_then_release(connection: Any) -> None:
        try:
            do_rollback(connection)
        finally:
            release(connection)

    dialect.do_commit = commit_then_release  # type: ignore[method-assign, assignment]
    dialect.do_rollback = rollback_then_release  # type: ignore[method-assign, assignment]


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

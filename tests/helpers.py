"""Test helpers: log in, start and wait for child processes, read rows back.

Fixtures are in conftest.py and build on these; the factories that make users, devices, books
and campaigns are in factories.py. Nothing here writes into the checkout: a child process gets
its own instance folder (process_env) and runs in a temporary directory (Process).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from webpush_server.devrun import web_command
from webpush_server.extensions import db
from webpush_server.jobs.delivery import close_sender
from webpush_server.notifications.models import Delivery
from webpush_server.realtime.broker import visible_users

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
VAPID_SUBJECT = "mailto:push-ops@webpush-server.dev"


# -- logging in ------------------------------------------------------------------------------


def csrf_from(html: str) -> str:
    """Read the CSRF token from a page's meta tag."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


class Api:
    """A browser session on a Flask test client: sends the CSRF header on unsafe requests."""

    def __init__(self, client) -> None:
        self.client = client
        self.csrf: str | None = None
        self.email: str | None = None

    def login(self, email: str, password: str = PASSWORD):
        """Log in through the form, as a browser does."""
        token = csrf_from(self.client.get("/login").text)
        response = self.client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )
        assert response.status_code == 302, response.text
        self.csrf = csrf_from(self.client.get("/notifications").text)
        self.email = email
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


def login_session(base_url: str, email: str, password: str = PASSWORD) -> requests.Session:
    """Log in to a live server through the form; return the session (cookies, CSRF header)."""
    session = requests.Session()
    token = csrf_from(session.get(f"{base_url}/login", timeout=10).text)
    response = session.post(
        f"{base_url}/login",
        data={"email": email, "password": password, "csrf_token": token},
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text
    page = session.get(f"{base_url}/notifications", timeout=10).text
    session.headers["X-CSRFToken"] = csrf_from(page)
    return session


def log_in_firefox(browser, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Log a Firefox (tests/browser/firefox.py) in through the login form."""
    browser.navigate(f"{base_url}/login")
    browser.type("input[name=email]", email)
    browser.type("input[name=password]", password)
    browser.click("form[action$='/login'] button[type=submit]")
    browser.wait_until("!location.pathname.startsWith('/login')")


def enable_push(browser, base_url: str) -> str:
    """Turn push on from the notifications page; return the endpoint the page stored."""
    browser.navigate(f"{base_url}/notifications")
    browser.wait_until(
        "document.querySelector('#push-toggle') && !document.querySelector('#push-toggle').disabled"
    )
    browser.click("#push-toggle")
    browser.wait_until("document.querySelectorAll('#devices li[data-endpoint]').length === 1")
    return browser.script(
        "return document.querySelector('#devices li[data-endpoint]').dataset.endpoint"
    )


# -- child processes -------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(settings: dict, instance_path: str | os.PathLike, **extra: str) -> dict:
    """Environment for a web, worker or flask-command child process with the test settings.

    The child's instance folder (keys, secrets) is instance_path, never the checkout's.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "WEBPUSH_"))}
    env.update(
        INSTANCE_PATH=str(instance_path),
        DATABASE_URL=settings["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=settings["REDIS_URL"],
        VAPID_PRIVATE_KEY=settings["VAPID_PRIVATE_KEY"],
        VAPID_SUBJECT=settings["VAPID_SUBJECT"],
        PUSH_SERVICE_HOSTS=settings["PUSH_SERVICE_HOSTS"],
        SECRET_KEY=settings["SECRET_KEY"],
        FLASK_PUSH_RETRY_BASE_SECONDS=str(settings["PUSH_RETRY_BASE_SECONDS"]),
        FLASK_SWEEP_GRACE_SECONDS=str(settings["SWEEP_GRACE_SECONDS"]),
        FLASK_BABEL_DEFAULT_LOCALE=settings.get("BABEL_DEFAULT_LOCALE", "ko"),
        # The children run outside the checkout (cwd is a temporary folder): import it from here.
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


class Process:
    """A child process (server or worker) with its output kept for failure messages.

    It runs in log_path's folder (a test's tmp_path), so nothing it writes lands in the checkout.
    """

    def __init__(self, argv: list[str], env: dict, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            env=env,
            cwd=log_path.parent,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def close_websocket(ws) -> None:
    """Close a websocket-client socket, also one whose server has already closed it.

    recv() answers a server's close frame and marks the socket closed without closing it, and
    close() then returns early: shutdown() releases the file descriptor, which would otherwise
    be collected later as a ResourceWarning in some other test.
    """
    ws.close()
    ws.shutdown()


def wait_until(condition, what: str, timeout: float = 30) -> None:
    """Poll condition until it holds; fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling the condition, not waiting instead of it


def wait_for_http(url: str, process: Process, timeout: float = 30) -> None:
    """Wait until url answers, failing early if the server process dies."""
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


def start_web(settings: dict, instance_path, log_path: Path, **env: str) -> tuple[str, Process]:
    """Start one gunicorn web process as production does; return its URL and process."""
    port = free_port()
    server = Process(
        web_command(f"127.0.0.1:{port}", threads=8),
        process_env(settings, instance_path, **env),
        log_path,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for_http(url + "/login", server)
    return url, server


# -- reading rows back -----------------------------------------------------------------------


def count(app, model, *where) -> int:
    """Count rows of model matching where."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def rows(app, model, *where) -> list:
    """Rows of model matching where, in id order, detached from the session."""
    with app.app_context():
        found = db.session.scalars(select(model).where(*where).order_by(model.id)).all()
        db.session.expunge_all()
        return found


def deliveries(app) -> list[Delivery]:
    """Every delivery row, oldest first."""
    return rows(app, Delivery)


def delivery_statuses(app, notification_id: int) -> list[str]:
    """The status of each delivery of one notification."""
    with app.app_context():
        return list(
            db.session.scalars(
                select(Delivery.status).where(Delivery.notification_id == notification_id)
            )
        )


def is_visible(app, user_id: int) -> bool:
    """Whether the user has a visible tab open, as the presence registry says."""
    with app.app_context():
        return user_id in visible_users([user_id])


def dispose(application) -> None:
    """Close everything an app holds: push connections, database pool, Redis."""
    close_sender(application)
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    for name in ("redis", "readyz_redis"):
        conn = application.extensions.get(name)
        if conn is not None:
            conn.close()

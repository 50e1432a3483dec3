"""Configuration: defaults, the environment, and startup validation."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_PUSH_SERVICE_HOSTS = (
    "fcm.googleapis.com,*.push.services.mozilla.com,*.notify.windows.com,*.push.apple.com"
)


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def defaults(instance_path: str) -> dict:
    """Return the default settings, resolved against the instance folder."""
    return {
        "SQLALCHEMY_DATABASE_URI": "sqlite:///" + os.path.join(instance_path, "webpush.db"),
        "REDIS_URL": None,
        # The site's absolute base URL, for links built outside a request (push `navigate`).
        "PUBLIC_URL": None,
        "VAPID_PRIVATE_KEY": None,
        "VAPID_SUBJECT": None,
        "PUSH_SERVICE_HOSTS": DEFAULT_PUSH_SERVICE_HOSTS,
        "APP_TIMEZONE": "Asia/Seoul",
        "HOLD_PICKUP_DAYS": 3,
        "LOAN_DAYS": 14,
        "MAX_SUBSCRIPTIONS_PER_USER": 20,
        # Delivery tuning: a job carries a batch, a batch has many requests in flight.
        "DELIVERY_BATCH_SIZE": 250,
        "PUSH_CONCURRENCY_PER_ORIGIN": 50,
        "PUSH_TIMEOUT_SECONDS": 10.0,
        "PUSH_MAX_ATTEMPTS": 5,
        "PUSH_RETRY_BASE_SECONDS": 5.0,
        "PUSH_RETRY_MAX_SECONDS": 3600.0,
        # A delivery claimed longer ago than this belongs to a dead worker.
        # A worker renews its claims every third of this while it sends (jobs/lease.py);
        # the sweeper takes back claims not renewed within it: a dead worker's, soon.
        "DELIVERY_CLAIM_TIMEOUT_SECONDS": 60,
        "SWEEP_GRACE_SECONDS": 30,
        # Workers and the scheduler wait for a lost Redis, the wait doubling up to this;
        # the scheduler checks this often that Redis still holds every cron entry.
        "REDIS_RECONNECT_MAX_SECONDS": 30.0,
        "SCHEDULER_CHECK_SECONDS": 60.0,
        # Scheduled jobs (jobs.batch): an execution whose heartbeat (one a chunk) is older
        # than this is taken for dead and resumed; an execution fails after more skipped
        # items than the limit; a daily job started later than this after its time is late.
        "JOB_STALE_SECONDS": 300,
        "JOB_SKIP_LIMIT": 10,
        "JOB_LATE_AFTER_SECONDS": 300,
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # None: leave logging as the process set it up; "json" or "text": see logs.py.
        "LOG_FORMAT": None,
        # True only for the demo (`make run` sets DEMO_ACCOUNTS=1): the login page then lists
        # the demo accounts and their password. Never in production, nor in tests unless set.
        "DEMO_ACCOUNTS": False,
    }


def from_environment(config: dict) -> None:
    """Apply the documented environment variables and the Heroku-style URL fixes."""
    env = os.environ
    if env.get("DATABASE_URL"):
        config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(env["DATABASE_URL"])
    for name in (
        "REDIS_URL",
        "VAPID_PRIVATE_KEY",
        "VAPID_SUBJECT",
        "PUSH_SERVICE_HOSTS",
        "APP_TIMEZONE",
        "SECRET_KEY",
        "LOG_FORMAT",
        "METRICS_TOKEN",
        "METRICS_PORT",
        "PUBLIC_URL",
    ):
        if env.get(name):
            config[name] = env[name]
    if env.get("DEMO_ACCOUNTS"):
        config["DEMO_ACCOUNTS"] = env["DEMO_ACCOUNTS"].strip().lower() in ("1", "true", "yes")
    if env.get("HOLD_PICKUP_DAYS"):
        config["HOLD_PICKUP_DAYS"] = int(env["HOLD_PICKUP_DAYS"])
    for name in (
        "RETENTION_ATTEMPT_DAYS",
        "RETENTION_DELIVERY_DAYS",
        "RETENTION_NOTIFICATION_DAYS",
    ):
        if env.get(name):
            config[name] = int(env[name])


def normalize_database_url(url: str) -> str:
    """Map `postgres://` (Heroku) and bare `postgresql://` onto the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_private_dir(path: str | Path) -> None:
    """Create a missing directory only its owner can enter (0700 from the start, not after)."""
    os.makedirs(path, mode=0o700, exist_ok=True)


def make_instance_dir(path: str | Path) -> None:
    """Create the instance folder 0700; tighten one made before this rule (0755)."""
    make_private_dir(path)
    try:
        if os.stat(path).st_mode & 0o077:
            # It holds the secret key, the VAPID key and the SQLite file.
            os.chmod(path, 0o700)
    except OSError:
        pass  # not ours to change (a mounted or shared folder): leave it as its owner set it


def write_private_file(path: str | Path, data: bytes) -> None:
    """Write data to path readable by its owner only, with no moment of wider permissions.

    The bytes go to a new file created 0600 beside path, which then replaces path at once,
    so a reader sees the old file or the new one, never a half-written or world-readable one.
    """
    path = Path(path)
    make_private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_secret_key(instance_path: str) -> str:
    """Read the development secret key from instance/, creating it once (mode 0600)."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        write_private_file(path, secrets.token_urlsafe(48).encode())
    return path.read_text().strip()


_RESERVED_DOMAINS = re.compile(
    r"(^|\.)(localhost|example\.(com|net|org)|example|test|invalid|local)$", re.IGNORECASE
)


def validate_vapid_subject(subject: str | None) -> str:
    """Return the subject when push services will accept it, else raise ConfigError.

    Apple answers 403 BadJwtToken to localhost, placeholder or malformed subjects, so
    we refuse them here rather than on the first push.
    """
    hint = (
        "set VAPID_SUBJECT to a contact, e.g. mailto:ops@yourdomain.org or https://yourdomain.org"
    )
    if not subject:
        raise ConfigError(f"VAPID_SUBJECT is not set: {hint}")
    if subject != subject.strip() or any(c.isspace() for c in subject):
        raise ConfigError(f"VAPID_SUBJECT {subject!r} contains spaces: {hint}")
    if subject.startswith("mailto:"):
        local, _, host = subject[len("mailto:") :].partition("@")
        valid = bool(local and "." in host and re.fullmatch(r"[A-Za-z0-9.-]+", host))
    elif subject.startswith("https://"):
        host = urlparse(subject).hostname or ""
        valid = "." in host
    else:
        raise ConfigError(f"VAPID_SUBJECT {subject!r} must start with mailto: or https:: {hint}")
    if _RESERVED_DOMAINS.search(host.rstrip(".")):
        raise ConfigError(
            f"VAPID_SUBJECT {subject!r} uses a placeholder or local domain that push services "
            f"reject: {hint}"
        )
    if not valid:
        kind = "mailto: address" if subject.startswith("mailto:") else "https: URL"
        raise ConfigError(f"VAPID_SUBJECT {subject!r} is not a valid {kind}: {hint}")
    return subject


def validate_public_url(url: str | None) -> str | None:
    """Return PUBLIC_URL without a trailing slash, or raise ConfigError when it is no origin."""
    if not url:
        return None
    hint = "set PUBLIC_URL to the site's base URL, e.g. https://notify.yourdomain.org"
    try:
        parts = urlparse(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"PUBLIC_URL {url!r} is not a URL ({exc}): {hint}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"PUBLIC_URL {url!r} must be an absolute http(s) URL: {hint}")
    if parts.path.strip("/") or parts.query or parts.fragment or parts.username:
        # The app's routes sit at the root: /n/<id> must resolve against the origin.
        raise ConfigError(f"PUBLIC_URL {url!r} must be an origin, with no path or query: {hint}")
    return url.rstrip("/")


def public_url(config: dict) -> str:
    """Return the site's base URL: PUBLIC_URL, else the local one `make run` serves."""
    return config.get("PUBLIC_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '5000')}"

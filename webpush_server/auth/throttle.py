"""Login throttling: failed attempts per account and per address earn a growing delay.

Only failures count, so a successful login never costs anyone anything, and a correct
password clears its account's failures. Each failure past the free ones doubles the wait
before the next attempt is even checked, up to a cap: per account the cap is short
(a minute by default), so a stranger hammering someone's e-mail slows guessing to about one
try a minute but can never lock the owner out for longer than that; per address it is longer,
because an address only ever slows itself down. Counts live in Redis and lapse after
LOGIN_FAILURE_WINDOW_SECONDS without failures.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from flask import current_app
from flask_babel import gettext
from redis.exceptions import RedisError

from ..errors import RateLimited
from ..jobs.queues import connection

log = logging.getLogger(__name__)

PREFIX = "webpush:login-failures:"

DEFAULTS = {
    "LOGIN_ACCOUNT_FREE_FAILURES": 5,
    "LOGIN_ADDRESS_FREE_FAILURES": 20,
    "LOGIN_DELAY_BASE_SECONDS": 1.0,
    "LOGIN_ACCOUNT_DELAY_MAX_SECONDS": 60.0,
    "LOGIN_ADDRESS_DELAY_MAX_SECONDS": 900.0,
    "LOGIN_FAILURE_WINDOW_SECONDS": 3600,
}


def _keys(email: str, address: str | None) -> list[tuple[str, str]]:
    # Hashed: Redis should not hold a list of e-mail addresses people typed.
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    keys = [("ACCOUNT", f"{PREFIX}account:{account}")]
    if address:
        keys.append(("ADDRESS", f"{PREFIX}address:{address}"))
    return keys


def check(email: str, address: str | None) -> None:
    """Raise RateLimited while the account or the address must still wait."""
    now = time.time()
    try:
        with connection().pipeline(transaction=False) as pipe:
            for _, key in _keys(email, address):
                pipe.hget(key, "until")
            waits = [float(until) - now for until in pipe.execute() if until is not None]
    except RedisError:
        # Fail open: a Redis outage must not stop everyone logging in; it is logged loudly.
        log.warning("login throttle unavailable; not throttling", exc_info=True)
        return
    wait = max(waits, default=0)
    if wait > 0:
        raise RateLimited(
            "email",
            gettext("Too many failed logins. Wait a moment before trying again."),
            retry_after=math.ceil(wait),
        )


def failed(email: str, address: str | None) -> None:
    """Count one failed login against the account and the address."""
    config = current_app.config
    now = time.time()
    window = int(config["LOGIN_FAILURE_WINDOW_SECONDS"])
    try:
        redis = connection()
        for kind, key in _keys(email, address):
            with redis.pipeline() as pipe:
                pipe.hincrby(key, "count", 1)
                pipe.expire(key, window)
                count = pipe.execute()[0]
            excess = count - int(config[f"LOGIN_{kind}_FREE_FAILURES"])
            if excess > 0:
                delay = min(
                    float(config["LOGIN_DELAY_BASE_SECONDS"]) * 2 ** (excess - 1),
                    float(config[f"LOGIN_{kind}_DELAY_MAX_SECONDS"]),
                )
                redis.hset(key, "until", now + delay)
    except RedisError:
        log.warning("login throttle unavailable; failure not counted", exc_info=True)


def succeeded(email: str) -> None:
    """Forget the account's failures: its owner just proved who they are."""
    try:
        connection().delete(_keys(email, None)[0][1])
    except RedisError:
        log.warning("login throttle unavailable", exc_info=True)

"""What a push service's answer means for a delivery: the one place that decides."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from ..timeutil import utcnow


class Outcome(enum.StrEnum):
    SENT = "sent"
    GONE = "gone"  # 404/410: the subscription expired or was unsubscribed
    TOO_LARGE = "too_large"  # 413: resend as a tickle
    RATE_LIMITED = "rate_limited"  # 429/503: honour Retry-After
    TRANSIENT = "transient"  # other 5xx, timeouts, connection errors: back off
    CONFIG_ERROR = "config_error"  # 400/401/403 and other 4xx: our keys or JWT are wrong
    REFUSED = "refused"  # we would not connect (SSRF policy): fail, keep the subscription
    EXPIRED = "expired"  # the notification outlived its TTL before we could send it
    # Preparing or sending this request raised (an endpoint we cannot write, a bug): fail it
    # alone, keep the subscription; retrying would raise again.
    ERROR = "error"
    # Other channels (channels/): the mail server refused the recipient for good (SMTP 5xx);
    # a fallback e-mail or SMS that push made unnecessary.
    BOUNCED = "bounced"
    SKIPPED = "skipped"


def classify(status: int | None) -> Outcome:
    """Map a response status (None: no response at all) to an outcome."""
    if status is None:
        return Outcome.TRANSIENT
    if 200 <= status < 300:
        return Outcome.SENT
    if status in (404, 410):
        return Outcome.GONE
    if status == 413:
        return Outcome.TOO_LARGE
    if status in (429, 503):
        return Outcome.RATE_LIMITED
    if status >= 500:
        return Outcome.TRANSIENT
    # 400/401/403 and the rest of 4xx say our request is wrong. Deleting the subscription
    # here would let one bad key wipe every device, so we only fail loudly.
    return Outcome.CONFIG_ERROR


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    # ASCII digits only ("²" passes isdigit() but not float()); a huge number is just long.
    if value.isascii() and value.isdigit():
        return float(value) if len(value) <= 12 else float(10**12)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or utcnow())).total_seconds())


def backoff_seconds(
    attempt: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, never above cap."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How often and how patiently a delivery is retried (PUSH_MAX_ATTEMPTS, PUSH_RETRY_*)."""

    max_attempts: int
    base_seconds: float
    max_seconds: float


def next_state(
    outcome: Outcome,
    attempts: int,
    now: datetime,
    settings: RetrySettings,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> tuple[str, datetime | None]:
    """Return a delivery's new status after an outcome and, for a retry, when it is due.

    Args:
        outcome: what the last attempt came to.
        attempts: the attempts made so far, this one included.
        now: when the attempt ended.
        settings: the retry bound and backoff.
        retry_after: the seconds a 429/503 asked us to wait, if it said.
        rng: the source of backoff jitter (tests pass a seeded one).

    Returns:
        ("pending", when) for a retry; otherwise the final status and None.
    """
    if outcome is Outcome.SENT:
        return "sent", None
    if outcome is Outcome.GONE:
        return "gone", None
    if outcome is Outcome.EXPIRED:
        return "expired", None
    if outcome is Outcome.SKIPPED:
        return "skipped", None
    if outcome in (Outcome.RATE_LIMITED, Outcome.TRANSIENT):
        if attempts >= settings.max_attempts:
            return "failed", None
        delay = backoff_seconds(attempts, settings.base_seconds, settings.max_seconds, rng)
        if outcome is Outcome.RATE_LIMITED and retry_after is not None:
            delay = min(max(retry_after, 0.0), settings.max_seconds)
        return "pending", now + timedelta(seconds=delay)
    # TOO_LARGE even as a tickle, CONFIG_ERROR, REFUSED, ERROR: retrying would not help.
    return "failed", None

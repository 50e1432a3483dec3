"""The outcome policy: one place maps push service answers to what we do."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from webpush_server.push.policy import (
    Outcome,
    RetrySettings,
    backoff_seconds,
    classify,
    next_state,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (201, Outcome.SENT),
        (202, Outcome.SENT),
        (404, Outcome.GONE),
        (410, Outcome.GONE),
        (413, Outcome.TOO_LARGE),
        (429, Outcome.RATE_LIMITED),
        (503, Outcome.RATE_LIMITED),
        (500, Outcome.TRANSIENT),
        (502, Outcome.TRANSIENT),
        (504, Outcome.TRANSIENT),
        (None, Outcome.TRANSIENT),
        (400, Outcome.CONFIG_ERROR),
        (401, Outcome.CONFIG_ERROR),
        (403, Outcome.CONFIG_ERROR),
        (307, Outcome.CONFIG_ERROR),
    ],
)
def test_classify(status, outcome):
    assert classify(status) is outcome


def test_retry_after_seconds_and_http_date():
    now = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_retry_after_from_a_hostile_push_service_is_a_number_or_nothing():
    now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("²", now) is None
    assert parse_retry_after("１０", now) is None
    assert parse_retry_after("9" * 5000, now) == 10**12


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    rng = random.Random(7)
    samples = {
        attempt: [backoff_seconds(attempt, 2, 60, rng) for _ in range(200)]
        for attempt in range(1, 9)
    }
    for attempt, values in samples.items():
        ceiling = min(60, 2 * 2 ** (attempt - 1))
        assert all(ceiling / 2 <= v <= ceiling for v in values)
        assert len(set(values)) > 100  # jittered, so retries do not stampede together
    assert max(samples[8]) <= 60
    assert min(samples[3]) > max(samples[1])


NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SETTINGS = RetrySettings(max_attempts=5, base_seconds=2.0, max_seconds=60.0)


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        (Outcome.SENT, "sent"),
        (Outcome.GONE, "gone"),
        (Outcome.EXPIRED, "expired"),
        (Outcome.TOO_LARGE, "failed"),  # even as a tickle: retrying would not help
        (Outcome.CONFIG_ERROR, "failed"),
        (Outcome.REFUSED, "failed"),
        (Outcome.ERROR, "failed"),  # building or sending the request raised: it would again
    ],
)
def test_final_outcomes_are_never_retried(outcome, status):
    assert next_state(outcome, 1, NOW, SETTINGS) == (status, None)


@pytest.mark.parametrize("outcome", [Outcome.TRANSIENT, Outcome.RATE_LIMITED])
def test_retries_back_off_until_the_last_attempt_then_fail(outcome):
    rng = random.Random(3)
    for attempts in range(1, SETTINGS.max_attempts):
        status, due = next_state(outcome, attempts, NOW, SETTINGS, rng=rng)
        ceiling = min(60.0, 2.0 * 2 ** (attempts - 1))
        assert status == "pending"
        assert timedelta(seconds=ceiling / 2) <= due - NOW <= timedelta(seconds=ceiling)
    assert next_state(outcome, SETTINGS.max_attempts, NOW, SETTINGS) == ("failed", None)
    assert next_state(outcome, SETTINGS.max_attempts + 1, NOW, SETTINGS) == ("failed", None)


def test_rate_limits_wait_as_asked_within_the_cap():
    def wait(retry_after):
        status, due = next_state(Outcome.RATE_LIMITED, 1, NOW, SETTINGS, retry_after)
        assert status == "pending"
        return (due - NOW).total_seconds()

    assert wait(42) == 42
    assert wait(7200) == 60  # never longer than PUSH_RETRY_MAX_SECONDS
    assert wait(-5) == 0
    # Retry-After means nothing on other answers: a 500 backs off as usual.
    _, due = next_state(Outcome.TRANSIENT, 1, NOW, SETTINGS, retry_after=42)
    assert due - NOW <= timedelta(seconds=2)

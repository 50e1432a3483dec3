"""The outcome policy: one place maps push service answers to what we do."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from webpush_server.push.policy import Outcome, backoff_seconds, classify, parse_retry_after


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

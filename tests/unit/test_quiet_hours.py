"""When quiet hours end: across midnight, inside and outside, in two time zones, across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from webpush_server.channels.quiet import quiet_end

SEOUL = ZoneInfo("Asia/Seoul")  # UTC+9, no DST
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        # 23:30 in Seoul, inside 22:00–08:00: ends at 08:00 the next morning (23:00 UTC).
        (utc(2026, 12, 1, 14, 30), SEOUL, utc(2026, 12, 1, 23, 0)),
        # 03:00 in Seoul, after midnight, still inside: ends at 08:00 the same day.
        (utc(2026, 12, 1, 18, 0), SEOUL, utc(2026, 12, 1, 23, 0)),
        # 12:00 in Seoul: outside.
        (utc(2026, 12, 1, 3, 0), SEOUL, None),
        # The same instant, 22:00 in New York (EST, UTC-5): inside, ends 08:00 EST = 13:00 UTC.
        (utc(2026, 12, 2, 3, 0), NEW_YORK, utc(2026, 12, 2, 13, 0)),
        # 08:00 sharp is outside (the end is exclusive), 22:00 sharp inside.
        (utc(2026, 12, 1, 13, 0), NEW_YORK, None),
        # Across the spring-forward night (8 March 2026): 23:00 EST, ends 08:00 EDT (12:00 UTC).
        (utc(2026, 3, 8, 4, 0), NEW_YORK, utc(2026, 3, 8, 12, 0)),
    ],
)
def test_a_window_across_midnight(now, zone, expected):
    assert quiet_end(now, "22:00", "08:00", zone) == expected


def test_a_window_within_one_day():
    # 13:00–14:00 in Seoul: 13:30 is inside, 14:00 not, 12:59 not.
    assert quiet_end(utc(2026, 12, 1, 4, 30), "13:00", "14:00", SEOUL) == utc(2026, 12, 1, 5, 0)
    assert quiet_end(utc(2026, 12, 1, 5, 0), "13:00", "14:00", SEOUL) is None
    assert quiet_end(utc(2026, 12, 1, 3, 59), "13:00", "14:00", SEOUL) is None

"""static/js/time.js says every time exactly as timeutil.py does: same zone (KST), same words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from webpush_server.timeutil import isoformat, local_time, relative_time

pytestmark = pytest.mark.browser

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
OFFSETS = [
    timedelta(seconds=20),
    timedelta(minutes=-5),
    timedelta(hours=3),
    timedelta(hours=26),
    timedelta(hours=47),
    timedelta(days=-9),
    timedelta(days=40),
    timedelta(days=-400),
    timedelta(days=280),  # September: ICU would say "Sept"
]


def test_browser_and_server_format_times_alike(firefox, live_server, app):
    firefox.navigate(live_server + "/login")
    moments = [NOW + offset for offset in OFFSETS]
    with app.app_context():
        expected = [
            [local_time(m), local_time(m, "notice"), relative_time(m, now=NOW)] for m in moments
        ]
        due = NOW.date() + timedelta(days=3)
        expected_due = [local_time(due), relative_time(due, now=NOW)]
    got = firefox.script(
        """
        const time = await import('/static/js/time.js');
        const now = Date.parse(arguments[1]);
        return [
          arguments[0].map((iso) => [time.formatTime(iso), time.formatTime(iso, 'notice'),
                                     time.formatRelative(iso, now)]),
          [time.formatTime(arguments[2]), time.formatRelative(arguments[2], now)],
        ];
        """,
        [isoformat(m) for m in moments],
        isoformat(NOW),
        due.isoformat(),
    )
    assert got == [expected, expected_due]
    assert "KST" in got[0][0][0]

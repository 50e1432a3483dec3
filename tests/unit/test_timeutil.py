"""One way to show time: the display zone, its abbreviation, relative words, the <time> markup."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask_babel import Babel, force_locale

from webpush_server.i18n.catalog import compiled_directory
from webpush_server.timeutil import local_time, money, relative_time, when, zone_label

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # 2 Dec 03:00 in Seoul


@pytest.fixture
def zone_app(tmp_path):
    """A bare app whose APP_TIMEZONE a test may change; English unless a test forces Korean."""
    app = Flask(__name__)
    app.config["APP_TIMEZONE"] = "Asia/Seoul"
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled_directory(str(tmp_path)))
    Babel(app)
    with app.app_context():
        yield app


def test_shows_times_in_the_display_zone_named_as_people_read_it(zone_app):
    assert local_time(NOW) == "2 Dec 2026, 03:00 KST"
    assert local_time(NOW, "notice") == "Wed 2 Dec, 03:00 KST"
    assert local_time(NOW, "input") == "2026-12-02T03:00"
    assert local_time(NOW, "date") == "2 Dec 2026"
    assert local_time(date(2026, 12, 15)) == "15 Dec 2026"
    assert local_time(None) == "—"
    assert "Asia/Seoul" not in local_time(NOW, zone_name=True)


def test_names_zones_by_abbreviation_or_offset(zone_app):
    zone_app.config["APP_TIMEZONE"] = "Europe/Berlin"
    assert local_time(NOW).endswith(" CET")
    assert local_time(NOW + timedelta(days=200)).endswith(" CEST")
    zone_app.config["APP_TIMEZONE"] = "Asia/Dubai"
    assert local_time(NOW) == "1 Dec 2026, 22:00 UTC+04"
    assert zone_label(NOW) == "UTC"


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(seconds=20), "just now"),
        (timedelta(minutes=-5), "5 minutes ago"),
        (timedelta(hours=3), "in 3 hours"),
        (timedelta(hours=26), "tomorrow"),
        (timedelta(days=2, hours=1), "in 2 days"),
        (timedelta(days=-1), "yesterday"),
        (timedelta(days=-9), "9 days ago"),
        # Calendar days in Seoul: 2 Dec 03:00 + 1 day 23 h is 4 Dec, "in 2 days".
        (timedelta(days=1, hours=23), "in 2 days"),
        (timedelta(days=11, hours=20), "in 11 days"),  # 13 Dec 23:00
        (timedelta(days=40), "next month"),
    ],
)
def test_words_relative_times_as_intl_does(zone_app, offset, words):
    assert relative_time(NOW + offset, now=NOW) == words


def test_counts_dates_on_the_display_zones_calendar(zone_app):
    # 18:00 UTC on 1 Dec is already 2 Dec in Seoul: a loan due on 2 Dec is due today.
    assert relative_time(date(2026, 12, 2), now=NOW) == "today"
    assert relative_time(date(2026, 12, 4), now=NOW) == "in 2 days"


def test_renders_a_time_element_that_static_js_can_refresh(zone_app):
    html = str(when(NOW, relative=True))
    assert html.startswith('<time datetime="2026-12-01T18:00:00+00:00" data-style="datetime"')
    assert "data-relative" in html and "2 Dec 2026, 03:00 KST · " in html
    assert str(when("2026-12-01T18:00:00+00:00")).endswith(">2 Dec 2026, 03:00 KST</time>")
    assert ">15 Dec 2026</time>" in str(when("2026-12-15", "date"))
    assert str(when(None)) == "—"


def test_shows_times_in_korean_order_and_words(zone_app):
    with force_locale("ko"):
        assert local_time(NOW) == "2026년 12월 2일 (수) 오전 3:00 KST"
        assert local_time(NOW + timedelta(hours=12), "notice") == "12월 2일 (수) 오후 3:00 KST"
        assert local_time(NOW, "date") == "2026년 12월 2일"
        assert local_time(date(2026, 12, 15)) == "2026년 12월 15일"
        assert local_time(NOW, "input") == "2026-12-02T03:00"
        assert ">2026년 12월 2일 (수) 오전 3:00 KST</time>" in str(when(NOW))


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(seconds=20), "방금"),
        (timedelta(minutes=-5), "5분 전"),
        (timedelta(hours=3), "3시간 후"),
        (timedelta(hours=26), "내일"),
        (timedelta(days=2, hours=1), "2일 후"),
        (timedelta(days=-1), "어제"),
        (timedelta(days=-9), "9일 전"),
        (timedelta(days=40), "다음 달"),
        (timedelta(days=400), "내년"),
    ],
)
def test_words_relative_times_in_korean_as_intl_does(zone_app, offset, words):
    with force_locale("ko"):
        assert relative_time(NOW + offset, now=NOW) == words


def test_formats_won_in_both_languages(zone_app):
    assert money(1_234_000) == "₩1,234,000"
    with force_locale("ko"):
        assert money(1_234_000) == "₩1,234,000"
        assert money(0) == "₩0"

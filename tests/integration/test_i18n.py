"""Korean and English: which language a page speaks, the header's switch, dates and won."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.factories import add_campaign
from tests.helpers import ROOT, csrf_from
from webpush_server.channels.models import Preference
from webpush_server.extensions import db


@pytest.fixture
def app(make_app):
    """The production default: Korean when nothing else says otherwise."""
    return make_app(BABEL_DEFAULT_LOCALE="ko")


def html_lang(page: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', page)
    assert match, "page has no <html lang>"
    return match.group(1)


def test_a_page_is_korean_without_accept_language_and_english_when_asked(client):
    korean = client.get("/").text
    assert html_lang(korean) == "ko"
    assert "두 서비스, 하나의 알림함" in korean and "로그인" in korean
    assert "Two services, one inbox" not in korean
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,ko;q=0.5"}).text
    assert html_lang(english) == "en"
    assert "Two services, one inbox" in english and "두 서비스" not in english
    # The best match among ko and en: a German reader who also reads English gets English.
    assert html_lang(client.get("/", headers={"Accept-Language": "de, en;q=0.5"}).text) == "en"
    assert html_lang(client.get("/", headers={"Accept-Language": "ko-KR"}).text) == "ko"


def test_pages_vary_by_language_for_caches(client):
    vary = client.get("/").headers["Vary"]
    assert "Accept-Language" in vary and "Cookie" in vary


def test_the_switch_sets_a_cookie_for_an_anonymous_reader(client):
    page = client.get("/funding/").text
    assert html_lang(page) == "ko" and 'value="en"' in page and ">English</button>" in page
    switched = client.post(
        "/language", data={"language": "en", "next": "/funding/", "csrf_token": csrf_from(page)}
    )
    assert switched.status_code == 303 and switched.headers["Location"] == "/funding/"
    cookie = switched.headers["Set-Cookie"]
    assert cookie.startswith("lang=en;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # The cookie wins over the browser's Accept-Language from now on.
    again = client.get("/funding/", headers={"Accept-Language": "ko"}).text
    assert html_lang(again) == "en" and "Campaigns" in again and ">한국어</button>" in again


def test_the_switch_refuses_without_csrf_or_with_an_unknown_language(client):
    refused = client.post("/language", data={"language": "en"})
    # The CSRF refusal sends the browser back with a message; nothing is switched.
    assert refused.status_code in (302, 400)
    assert "lang=" not in refused.headers.get("Set-Cookie", "")
    assert html_lang(client.get("/").text) == "ko"
    token = csrf_from(client.get("/").text)
    # A refused form post goes back to its page, which says what was wrong.
    bad = client.post("/language", data={"language": "tlh", "csrf_token": token})
    assert bad.status_code == 302 and "lang=" not in bad.headers.get("Set-Cookie", "")
    assert "language: ko, en 중 하나" in client.get(bad.headers["Location"]).text
    # An outside address is no place to go back to.
    away = client.post("/language", data={"language": "en", "csrf_token": token, "next": "//x.io"})
    assert away.status_code == 303 and away.headers["Location"] == "/"


def test_a_logged_in_users_preference_wins_over_the_browser(app, login_as):
    reader = login_as("reader@webpush-server.dev")
    assert reader.put("/api/preferences", {"language": "ko"}).status_code == 200
    page = reader.get("/library/holds", headers={"Accept-Language": "en"}).text
    assert html_lang(page) == "ko" and "<h1>내 예약</h1>" in page
    reader.put("/api/preferences", {"language": "en"})
    page = reader.get("/library/holds", headers={"Accept-Language": "ko"}).text
    assert html_lang(page) == "en" and "<h1>My holds</h1>" in page


def test_the_switch_saves_a_logged_in_users_preference(app, login_as):
    reader = login_as("switcher@webpush-server.dev")
    page = reader.get("/notifications").text
    assert html_lang(page) == "ko"
    switched = reader.client.post(
        "/language",
        data={"language": "en", "next": "/notifications", "csrf_token": csrf_from(page)},
    )
    assert switched.status_code == 303
    assert reader.get("/api/preferences").json["language"] == "en"
    with app.app_context():
        assert [row.language for row in db.session.scalars(select(Preference))] == ["en"]
    # Another browser of the same user (no cookie, a Korean Accept-Language) follows it.
    elsewhere = login_as("switcher@webpush-server.dev")
    elsewhere.client.delete_cookie("lang")
    page = elsewhere.get("/notifications", headers={"Accept-Language": "ko"}).text
    assert html_lang(page) == "en" and "Push on this device" in page


def test_dates_and_won_are_localised_in_both_languages(app, login_as):
    admin = login_as("boss@webpush-server.dev", role="admin")
    deadline = datetime(2026, 12, 1, 6, 5, tzinfo=UTC) + timedelta(days=3650)
    campaign = add_campaign(
        admin, goal_amount=1_234_000, deadline=deadline.isoformat(), title="Reading room"
    )
    korean = admin.get(f"/funding/campaigns/{campaign}", headers={"Accept-Language": "ko"})
    english = admin.get(f"/funding/campaigns/{campaign}", headers={"Accept-Language": "en"})
    # Each request follows its own Accept-Language: the admin never chose a language.
    assert html_lang(korean.text) == "ko" and html_lang(english.text) == "en"
    assert "목표 ₩1,234,000" in korean.text and "of ₩1,234,000" in english.text
    # 2036-11-28 06:05 UTC is 15:05 in Seoul: Korean order and words, English day month year.
    assert "2036년 11월 28일 (금) 오후 3:05 KST" in korean.text
    assert "28 Nov 2036, 15:05 KST" in english.text
    assert "일 남음" in korean.text and "days left" in english.text


def test_the_page_carries_the_js_catalog_as_data_not_script(client):
    page = client.get("/").text
    match = re.search(r'<script type="application/json" id="js-catalog">(.*?)</script>', page)
    assert match, "a Korean page carries the scripts' catalog"
    catalog = json.loads(match.group(1))
    assert catalog["Mark read"] == "읽음으로 표시" and catalog["just now"] == "방금"
    assert "Two services, one inbox" not in catalog  # templates' strings stay on the server
    english = client.get("/", headers={"Accept-Language": "en"}).text
    assert 'id="js-catalog"' not in english  # English is the msgids themselves
    served = client.get("/i18n/ko.json")
    assert served.status_code == 200 and served.json == catalog
    assert client.get("/i18n/tlh.json").status_code == 404


def test_every_extracted_message_has_a_korean_translation():
    # What `make lint` runs: pybabel extract over the checkout, then the ko catalog compared.
    result = subprocess.run(
        [sys.executable, "scripts/check_translations.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

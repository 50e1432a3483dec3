"""Korean and English on the Python side: notices in the recipient's language and zone (when
recorded, whoever caused them), flash and JSON error messages in the request's, e-mail and SMS
in the recipient's, the password reset e-mail in the language of the page that asked."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask_babel import get_locale
from sqlalchemy import select, update

from tests.factories import add_book
from tests.helpers import Api, csrf_from, rows
from webpush_server.auth.services import find_user
from webpush_server.channels.models import Preference
from webpush_server.channels.sms import units
from webpush_server.extensions import db
from webpush_server.notifications.models import Delivery, Notification
from webpush_server.notifications.record import Notice
from webpush_server.notifications.text import N_, Later, localize

PUBLIC = "http://public.test"
NUMBER = "+821012345678"
KO = {"Accept-Language": "ko-KR,ko;q=0.9"}
EN = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture
def app(make_app, mail_server, twilio):
    """E-mail and SMS on; the suite's default language stays English (conftest)."""
    mail_server.clear()
    twilio.clear()
    return make_app(
        MAIL_URL=mail_server.url, PUBLIC_URL=PUBLIC, FALLBACK_AFTER_SECONDS=0, **twilio.settings()
    )


@pytest.fixture
def librarian(login_as) -> Api:
    return login_as("desk@webpush-server.dev", "librarian", name="Desk")


def speaking(login_as, email: str, language: str, timezone: str | None = None) -> Api:
    """Log a patron in and set their language (and zone) through the preferences API."""
    api = login_as(email, name=email.split("@")[0].title())
    prefs: dict = {"language": language}
    if timezone:
        prefs["timezone"] = timezone
    answer = api.put("/api/preferences", prefs)
    assert answer.status_code == 200 and answer.json["language"] == language, answer.text
    return api


def notices_of(app, email: str) -> list[Notification]:
    with app.app_context():
        user = find_user(email)
        assert user is not None
        found = list(
            db.session.scalars(
                select(Notification)
                .where(Notification.user_id == user.id)
                .order_by(Notification.id)
            )
        )
        db.session.expunge_all()
        return found


def test_each_recipient_reads_a_notice_in_their_language_and_zone(app, login_as, librarian):
    book_id, _ = add_book(librarian, copies=2, title="Piranesi")
    korean = speaking(login_as, "ko@webpush-server.dev", "ko")
    english = speaking(login_as, "en@webpush-server.dev", "en", "Europe/Berlin")
    # Each asks in the other's language: the notice follows the recipient, not the request.
    for api, headers in ((korean, EN), (english, KO)):
        placed = api.post(f"/api/library/books/{book_id}/holds", headers=headers)
        assert placed.status_code == 201 and placed.json["status"] == "ready", placed.text

    (ko,) = notices_of(app, "ko@webpush-server.dev")
    assert ko.kind == "book_available"
    assert ko.title == "예약하신 책이 준비되었습니다: Piranesi"
    # The pickup deadline in Korean date order, in the patron's zone (APP_TIMEZONE: KST).
    assert re.fullmatch(
        r"\d+번 사본이 \d+월 \d+일 \([월화수목금토일]\) 오[전후] \d+:\d\d KST까지 "
        r"대출 데스크에서 기다립니다\.",
        ko.body,
    ), ko.body
    (en,) = notices_of(app, "en@webpush-server.dev")
    assert en.title == "Your book is ready: Piranesi"
    assert re.fullmatch(
        r"Copy \d+ is waiting for you at the desk until \w{3} \d+ \w{3}, \d\d:\d\d CET\.", en.body
    ), en.body
    # The inbox hands back what was recorded, whatever language the reading page speaks.
    inbox = english.get("/api/notifications", headers=KO).json["notifications"]
    assert [n["title"] for n in inbox] == ["Your book is ready: Piranesi"]


def test_a_text_shared_by_many_recipients_renders_once_per_language(app, make_user):
    users = [make_user(f"fan{i}@webpush-server.dev") for i in range(6)]
    with app.app_context():
        for i, user_id in enumerate(users[:4]):
            db.session.add(Preference(user_id=user_id, language="ko" if i % 2 else "en"))
        db.session.commit()
        rendered: list[str] = []

        def stamp() -> str:
            rendered.append(str(get_locale()))
            return "!"  # a value formatted in the recipient's language (a date, money)

        # One Text for every follower (as campaign_deadline_soon builds it).
        title = N_("Your book is ready: %(title)s", title=Later.of(stamp))
        notices = [
            Notice(user_id=u, kind="test", title=title, body="", url="/", dedupe_key=f"fan:{u}")
            for u in users
        ]
        done = localize(notices)
    # Two users never chose: the default language (English in the suite) renders for them.
    assert sorted(rendered) == ["en", "ko"]
    titles = [notice.title for notice in done]
    assert titles.count("예약하신 책이 준비되었습니다: !") == 2
    assert titles.count("Your book is ready: !") == 4


def test_json_errors_speak_the_requests_language_with_stable_code_and_field(login_as):
    desk = login_as("desk@webpush-server.dev", "librarian")
    bad = {"copy_id": "abc", "user_email": "reader@webpush-server.dev"}
    ko = desk.post("/api/library/loans", json=bad, headers=KO)
    assert ko.status_code == 400
    assert ko.json["error"] == {
        "code": "invalid",
        "field": "copy_id",
        "message": "소장본 번호: 소장본에 적힌 번호를 입력하세요.",
        "fields": [
            {"field": "copy_id", "message": "소장본 번호: 소장본에 적힌 번호를 입력하세요."},
            {
                "field": "user_email",
                "message": "이메일이 reader@webpush-server.dev인 이용자가 없습니다.",
            },
        ],
    }
    en = desk.post("/api/library/loans", json=bad, headers=EN)
    assert en.json["error"] == {
        "code": "invalid",
        "field": "copy_id",
        "message": "Copy number: enter the number on the copy.",
        "fields": [
            {"field": "copy_id", "message": "Copy number: enter the number on the copy."},
            {"field": "user_email", "message": "No patron with e-mail reader@webpush-server.dev."},
        ],
    }
    # The user's preference wins over the browser's header.
    assert desk.put("/api/preferences", {"language": "ko"}).status_code == 200
    again = desk.post("/api/library/loans", json=bad, headers=EN)
    assert again.json["error"]["message"] == "소장본 번호: 소장본에 적힌 번호를 입력하세요."


def test_flash_messages_follow_the_preference_and_anonymous_pages_the_header(
    app, login_as, librarian
):
    book_id, _ = add_book(librarian, copies=1, title="Kindred")
    reader = speaking(login_as, "reader@webpush-server.dev", "ko")
    page = reader.client.post(
        f"/library/books/{book_id}/reserve",
        data={"csrf_token": reader.csrf},
        headers=EN,
        follow_redirects=True,
    )
    assert page.status_code == 200
    assert "서가에 사본이 있어 지금 따로 보관해 두었습니다." in page.text
    assert "A copy was on the shelf" not in page.text

    anonymous = app.test_client()
    form = anonymous.get("/login", headers=KO).text
    wrong = anonymous.post(
        "/login",
        data={"email": "nobody@webpush-server.dev", "password": "x", "csrf_token": csrf_from(form)},
        headers=KO,
    )
    assert wrong.status_code == 401 and "이메일 또는 비밀번호가 틀렸습니다." in wrong.text


def _cancel_with_note(app, login_as, librarian, note: str, *patrons: Api) -> None:
    """Each patron waits for a lent book; the library cancels every hold with a note."""
    book_id, (copy_id,) = add_book(librarian, copies=1, title="Beloved")
    lent = librarian.post(
        "/api/library/loans", json={"copy_id": copy_id, "user_email": "desk@webpush-server.dev"}
    )
    assert lent.status_code == 201, lent.text
    for patron in patrons:
        hold = patron.post(f"/api/library/books/{book_id}/holds")
        assert hold.status_code == 201 and hold.json["status"] == "waiting", hold.text
        gone = librarian.delete(f"/api/library/holds/{hold.json['id']}", json={"note": note})
        assert gone.status_code == 204, gone.text


def test_email_arrives_in_each_recipients_language(
    app, login_as, librarian, mail_server, run_worker
):
    korean = speaking(login_as, "ko@webpush-server.dev", "ko")
    english = speaking(login_as, "en@webpush-server.dev", "en")
    _cancel_with_note(app, login_as, librarian, "Damaged copy", korean, english)
    run_worker()
    mails = {mail.rcpt_tos[0]: mail for mail in mail_server.wait_for_count(2)}

    ko = mails["ko@webpush-server.dev"]
    assert ko["Subject"] == "Beloved 예약이 취소되었습니다"
    assert ko["Content-Language"] == "ko"
    assert "Ko님, 안녕하세요." in ko.text and "도서관 안내: Damaged copy" in ko.text
    assert "이메일 중단" in ko.text and "Stop these e-mails" not in ko.text
    assert '<html lang="ko">' in ko.html and "열기" in ko.html
    # The sent time through the shared formatter, in Korean.
    sent = r"보낸 시각 \d{4}년 \d+월 \d+일 \([월화수목금토일]\) 오[전후] \d+:\d\d KST"
    assert re.search(sent, ko.text), ko.text

    en = mails["en@webpush-server.dev"]
    assert en["Subject"] == "Your hold on Beloved was cancelled"
    assert en["Content-Language"] == "en" and '<html lang="en">' in en.html
    assert "Hello En," in en.text and "The library says: Damaged copy" in en.text
    assert "Stop these e-mails" in en.text


def test_the_reset_email_speaks_the_language_of_the_page_that_asked(
    app, login_as, mail_server, run_worker
):
    speaking(login_as, "ko@webpush-server.dev", "ko")
    anonymous = app.test_client()
    form = anonymous.get("/account/password-reset", headers=EN).text
    asked = anonymous.post(
        "/account/password-reset",
        data={"email": "ko@webpush-server.dev", "csrf_token": csrf_from(form)},
        headers=EN,
    )
    assert asked.status_code == 202
    assert "If an account uses this address" in asked.text
    run_worker()
    (mail,) = mail_server.wait_for_count(1)
    assert mail["Subject"] == "Reset your password" and mail["Content-Language"] == "en"
    assert "Someone asked to reset the password of your account." in mail.text

    mail_server.clear()
    korean = app.test_client()
    form = korean.get("/account/password-reset", headers=KO).text
    korean.post(
        "/account/password-reset",
        data={"email": "ko@webpush-server.dev", "csrf_token": csrf_from(form)},
        headers=KO,
    )
    run_worker()
    (mail,) = mail_server.wait_for_count(1)
    assert mail["Subject"] == "비밀번호를 재설정하세요" and mail["Content-Language"] == "ko"
    assert "계정의 비밀번호 재설정이 요청되었습니다." in mail.text


def test_a_korean_sms_is_cut_to_two_ucs2_segments_and_keeps_its_link(
    app, login_as, librarian, twilio, run_worker
):
    korean = speaking(login_as, "ko@webpush-server.dev", "ko")
    sms_on = korean.put("/api/preferences", {"kinds": {"hold_cancelled": {"sms": True}}})
    assert sms_on.status_code == 200, sms_on.text
    with app.app_context():
        user = find_user("ko@webpush-server.dev")
        assert user is not None
        # Verified already (the code's round trip is test_sms.py's): only the body matters here.
        db.session.execute(
            update(Preference)
            .where(Preference.user_id == user.id)
            .values(phone_number=NUMBER, phone_verified_at=datetime.now(UTC))
        )
        db.session.commit()
    note = "사본이 파손되어 수선 중입니다. " * 12  # far past 134 UCS-2 units
    _cancel_with_note(app, login_as, librarian, note.strip(), korean)
    run_worker()
    (sms,) = twilio.wait_for_count(1)
    assert sms.to == NUMBER
    length, gsm = units(sms.body)
    assert not gsm and length <= 134  # UCS-2: two segments of 67
    assert sms.body.startswith("Beloved 예약이 취소되었습니다: 도서관 안내: 사본이 파손되어")
    (row,) = rows(app, Delivery, Delivery.channel == "sms")
    assert sms.body.endswith(f"… {PUBLIC}/n/{row.notification_id}")

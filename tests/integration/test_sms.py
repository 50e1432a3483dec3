"""SMS through the Twilio Messages API stand-in: verified numbers, bodies, error codes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from tests.helpers import rows
from tests.service_api import bearer, make_key, notify_body
from webpush_server.auth.models import User
from webpush_server.channels.models import Preference
from webpush_server.extensions import db
from webpush_server.jobs.delivery import deliver
from webpush_server.notifications.models import Delivery

NUMBER = "+821012345678"


@pytest.fixture
def app(make_app, mail_server, twilio):
    mail_server.clear()
    twilio.clear()
    return make_app(MAIL_URL=mail_server.url, PUBLIC_URL="http://public.test", **twilio.settings())


def verify(api, twilio, number: str = "010-1234-5678") -> None:
    added = api.post("/api/preferences/phone", {"number": number})
    assert added.status_code == 202, added.text
    assert added.json["phone"] == {"number": NUMBER, "verified": False}
    (text,) = twilio.to(NUMBER)[-1:]
    code = re.search(r"\b(\d{6})\b", text.body).group(1)
    done = api.post("/api/preferences/phone/verify", {"code": code})
    assert done.status_code == 200 and done.json["phone"]["verified"] is True


def sms_on(api) -> None:
    answer = api.put("/api/preferences", {"kinds": {"announcement": {"sms": True}}})
    assert answer.status_code == 200


def announce(app, client, title="Closed tomorrow"):
    (user,) = rows(app, User)
    body = notify_body({"user_id": user.id}, title=title)
    answer = client.post("/api/v1/notifications", json=body, headers=bearer(make_key(app)[1]))
    assert answer.status_code == 202, answer.text


def sms_rows(app):
    return rows(app, Delivery, Delivery.channel == "sms")


def test_a_verified_number_gets_the_kinds_it_chose_by_sms(
    app, client, patron_api, twilio, run_worker
):
    sms_on(patron_api)
    announce(app, client, "Before verification")
    assert sms_rows(app) == []  # an unverified number is never used
    verify(patron_api, twilio)
    announce(app, client)
    run_worker()
    (row,) = sms_rows(app)
    assert row.status == "sent" and row.address == NUMBER
    (text,) = twilio.to(NUMBER)[1:]
    assert text.sender == "+15005550006"
    assert text.body == (
        f"Closed tomorrow: We close at 16:00 for a staff meeting. "
        f"http://public.test/n/{row.notification_id}"
    )


def test_bad_numbers_and_wrong_codes_are_refused(patron_api, twilio):
    bad = patron_api.post("/api/preferences/phone", {"number": "12"})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "number"
    assert patron_api.post("/api/preferences/phone", {"number": NUMBER}).status_code == 202
    code = re.search(r"\d{6}", twilio.to(NUMBER)[0].body).group(0)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        answer = patron_api.post("/api/preferences/phone/verify", {"code": wrong})
        assert answer.status_code == 400 and answer.json["error"]["code"] == "invalid_code"
    # Five wrong tries use the code up: even the right one is refused now.
    late = patron_api.post("/api/preferences/phone/verify", {"code": code})
    assert late.status_code == 400 and late.json["error"]["code"] == "invalid_code"
    assert patron_api.get("/api/preferences").json["phone"]["verified"] is False


def test_twilio_error_codes_map_onto_the_outbox_policy(app, client, patron_api, twilio, run_worker):
    verify(patron_api, twilio)
    sms_on(patron_api)
    twilio.answer(NUMBER, 429, 20429, retry_after=30)
    announce(app, client, "Rate limited")
    run_worker()
    (limited,) = sms_rows(app)
    assert limited.status == "pending" and limited.last_status_code == 429
    assert "20429" in limited.last_error
    twilio.answer(NUMBER, 400, 21211)
    with app.app_context():
        db.session.execute(update(Delivery).values(next_attempt_at=None))
        db.session.commit()
    with app.app_context():
        assert deliver([limited.id]) == {"failed": 1}
    (failed,) = sms_rows(app)
    assert failed.status == "failed" and "21211" in failed.last_error
    with app.app_context():
        pref = db.session.get(Preference, rows(app, User)[0].id)
        assert pref.phone_invalid_at is not None and pref.phone_verified_at is None
    announce(app, client, "After the number was found invalid")
    assert len(sms_rows(app)) == 1  # no more SMS to that number


def test_without_sms_configured_a_number_is_refused_with_409(make_app, login_as):
    plain = make_app()
    api = login_as("reader@webpush-server.dev", app=plain)
    answer = api.post("/api/preferences/phone", {"number": NUMBER})
    assert answer.status_code == 409 and answer.json["error"]["code"] == "sms_unavailable"
    assert api.get("/api/preferences").json["phone"] is None

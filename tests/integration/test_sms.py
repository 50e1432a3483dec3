"""SMS through the Twilio Messages API stand-in: verified numbers, bodies, error codes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.helpers import free_port, rows
from tests.service_api import bearer, make_key, notify_body
from webpush_server.auth.models import User
from webpush_server.channels.models import Preference
from webpush_server.extensions import db
from webpush_server.jobs.delivery import deliver
from webpush_server.notifications.models import Delivery, Notification
from webpush_server.timeutil import as_utc, utcnow

NUMBER = "+821012345678"


@pytest.fixture
def app(make_app, mail_server, twilio):
    mail_server.clear()
    twilio.clear()
    return make_app(MAIL_URL=mail_server.url, PUBLIC_URL="http://public.test", **twilio.settings())


def verify(api, twilio, run_worker, number: str = "010-1234-5678") -> None:
    added = api.post("/api/preferences/phone", {"number": number})
    assert added.status_code == 202, added.text
    assert added.json["phone"] == {"number": NUMBER, "verified": False}
    run_worker()  # the code travels through the outbox
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
    """The SMS deliveries of notices (not the verification codes')."""
    return rows(app, Delivery, Delivery.channel == "sms", Delivery.notification_id.in_(notices()))


def code_rows(app):
    """The SMS deliveries of verification codes."""
    codes = Delivery.notification_id.not_in(notices())
    return rows(app, Delivery, Delivery.channel == "sms", codes)


def notices():
    return select(Notification.id).where(Notification.kind != "phone_code")


def test_a_verified_number_gets_the_kinds_it_chose_by_sms(
    app, client, patron_api, twilio, run_worker
):
    sms_on(patron_api)
    announce(app, client, "Before verification")
    assert sms_rows(app) == []  # an unverified number is never used
    verify(patron_api, twilio, run_worker)
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


def test_the_service_api_sends_sms_where_it_is_configured_and_does_not_call_it_unavailable(
    app, client, patron_api, twilio, run_worker
):
    sms_on(patron_api)
    verify(patron_api, twilio, run_worker)
    (user,) = rows(app, User)
    key = make_key(app)[1]
    body = notify_body({"user_id": user.id}, title="SMS only", channels=["sms"])
    answer = client.post("/api/v1/notifications", json=body, headers=bearer(key))
    assert answer.status_code == 202, answer.text
    assert answer.json["skipped"] == []
    run_worker()
    (row,) = sms_rows(app)
    assert row.status == "sent" and row.address == NUMBER
    assert twilio.to(NUMBER)[-1].body.startswith("SMS only: ")
    status = client.get(f"/api/v1/notifications/{answer.json['id']}", headers=bearer(key)).json
    (recipient,) = status["recipients"]
    assert recipient["channels"]["sms"]["sent"] == 1
    assert recipient["channels"]["push"]["sent"] == 0


def test_bad_numbers_and_wrong_codes_are_refused(patron_api, twilio, run_worker):
    bad = patron_api.post("/api/preferences/phone", {"number": "12"})
    assert bad.status_code == 400 and bad.json["error"]["field"] == "number"
    assert patron_api.post("/api/preferences/phone", {"number": NUMBER}).status_code == 202
    run_worker()
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
    verify(patron_api, twilio, run_worker)
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


def code_in(text) -> str:
    return re.search(r"\b(\d{6})\b", text.body).group(1)


def test_the_code_travels_through_the_outbox_and_the_request_never_waits_on_twilio(
    app, patron_api, twilio, run_worker
):
    # Twilio down: nothing listens where the app looks for it.
    app.config["TWILIO_API_BASE"] = f"http://127.0.0.1:{free_port()}"
    added = patron_api.post("/api/preferences/phone", {"number": NUMBER})
    assert added.status_code == 202, added.text  # answered without reaching Twilio
    (row,) = code_rows(app)
    assert row.status == "pending" and row.address == NUMBER and row.attempts == 0
    run_worker()
    (row,) = code_rows(app)
    # The outbox policy: no answer → retried later, nothing lost.
    assert row.status == "pending" and row.attempts == 1 and row.next_attempt_at is not None
    assert "Twilio" in row.last_error
    assert twilio.to(NUMBER) == []
    app.config["TWILIO_API_BASE"] = twilio.base  # Twilio is back
    with app.app_context():
        db.session.execute(update(Delivery).values(next_attempt_at=None))
        db.session.commit()
        assert deliver([row.id]) == {"sent": 1}
    (text,) = twilio.to(NUMBER)
    assert "http" not in text.body  # the code's text alone, no link
    done = patron_api.post("/api/preferences/phone/verify", {"code": code_in(text)})
    assert done.status_code == 200 and done.json["phone"]["verified"] is True
    # The code's notification is for the phone, never the inbox.
    assert patron_api.get("/api/notifications").json["notifications"] == []


def test_a_new_code_withdraws_the_older_one_still_waiting(app, patron_api, twilio, run_worker):
    app.config["TWILIO_API_BASE"] = f"http://127.0.0.1:{free_port()}"
    assert patron_api.post("/api/preferences/phone", {"number": NUMBER}).status_code == 202
    assert patron_api.post("/api/preferences/phone", {"number": NUMBER}).status_code == 202
    first, second = code_rows(app)
    assert (first.status, second.status) == ("cancelled", "pending")


def test_a_twilio_5xx_is_retried_with_backoff_and_sent_on_a_later_attempt(
    app, client, patron_api, twilio, run_worker
):
    app.config["PUSH_RETRY_BASE_SECONDS"] = 60.0  # a backoff long enough to see
    verify(patron_api, twilio, run_worker)
    sms_on(patron_api)
    twilio.answer(NUMBER, 500, times=1)  # 500 once, then 201
    announce(app, client, "Second time lucky")
    run_worker()
    (row,) = sms_rows(app)
    assert row.status == "pending" and row.last_status_code == 500 and row.attempts == 1
    with app.app_context():
        waited = as_utc(row.next_attempt_at) - utcnow()
    assert waited.total_seconds() > 20  # backoff (60 s, half of it jittered): not at once
    assert len(twilio.to(NUMBER)) == 1  # only the code so far
    with app.app_context():
        # The backoff has run out (moved on the row's clock, not slept).
        db.session.execute(update(Delivery).values(next_attempt_at=None))
        db.session.commit()
        assert deliver([row.id]) == {"sent": 1}
    (row,) = sms_rows(app)
    assert row.status == "sent" and row.attempts == 2
    assert twilio.to(NUMBER)[-1].body.startswith("Second time lucky")


def age_code(app, minutes: float) -> None:
    """Move the code's sending time back: the 10-minute window read on the stored clock."""
    with app.app_context():
        db.session.execute(
            update(Preference).values(phone_code_sent_at=utcnow() - timedelta(minutes=minutes))
        )
        db.session.commit()


def test_a_code_works_for_10_minutes_only_and_the_number_stays_unverified(
    app, patron_api, twilio, run_worker
):
    assert patron_api.post("/api/preferences/phone", {"number": NUMBER}).status_code == 202
    run_worker()
    code = code_in(twilio.to(NUMBER)[0])
    age_code(app, 10.5)
    late = patron_api.post("/api/preferences/phone/verify", {"code": code})
    assert late.status_code == 400 and late.json["error"]["code"] == "invalid_code"
    assert late.json["error"]["field"] == "code" and "expired" in late.json["error"]["message"]
    assert patron_api.get("/api/preferences").json["phone"] == {"number": NUMBER, "verified": False}
    # A fresh code, 9 minutes old: still good.
    assert patron_api.post("/api/preferences/phone", {"number": NUMBER}).status_code == 202
    run_worker()
    age_code(app, 9)
    fresh = patron_api.post(
        "/api/preferences/phone/verify", {"code": code_in(twilio.to(NUMBER)[1])}
    )
    assert fresh.status_code == 200 and fresh.json["phone"]["verified"] is True


def test_five_wrong_tries_lock_that_code_but_a_new_code_works(app, patron_api, twilio, run_worker):
    assert patron_api.post("/api/preferences/phone", {"number": NUMBER}).status_code == 202
    run_worker()
    code = code_in(twilio.to(NUMBER)[0])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert patron_api.post("/api/preferences/phone/verify", {"code": wrong}).status_code == 400
    locked = patron_api.post("/api/preferences/phone/verify", {"code": code})
    assert locked.status_code == 400 and "expired" in locked.json["error"]["message"]
    with app.app_context():
        assert db.session.get(Preference, rows(app, User)[0].id).phone_verified_at is None
    assert patron_api.post("/api/preferences/phone", {"number": NUMBER}).status_code == 202
    run_worker()
    again = patron_api.post(
        "/api/preferences/phone/verify", {"code": code_in(twilio.to(NUMBER)[1])}
    )
    assert again.status_code == 200 and again.json["phone"]["verified"] is True

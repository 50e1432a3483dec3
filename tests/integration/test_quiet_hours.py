"""Quiet hours through the real pipeline: push waits, e-mail does not; short-lived ones go low."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from tests.factories import add_device
from tests.helpers import rows
from tests.service_api import bearer, make_key, notify_body
from webpush_server.auth.models import User
from webpush_server.channels.models import Preference
from webpush_server.extensions import db
from webpush_server.jobs.sweep import sweep_outbox
from webpush_server.notifications.models import Delivery, Notification
from webpush_server.service_api.services import release_due
from webpush_server.timeutil import as_utc, utcnow


@pytest.fixture
def app(make_app, mail_server, twilio):
    mail_server.clear()
    twilio.clear()
    return make_app(MAIL_URL=mail_server.url, PUBLIC_URL="http://public.test", **twilio.settings())


def quiet_around_now(api, zone: str) -> None:
    """Give the logged-in user quiet hours from an hour ago to an hour ahead, in zone."""
    local = utcnow().astimezone(ZoneInfo(zone))
    window = {
        "start": (local - timedelta(hours=1)).strftime("%H:%M"),
        "end": (local + timedelta(hours=1)).strftime("%H:%M"),
    }
    answer = api.put("/api/preferences", {"timezone": zone, "quiet_hours": window})
    assert answer.status_code == 200, answer.text


def user_id(app, email: str) -> int:
    return next(u.id for u in rows(app, User) if u.email == email)


def test_push_waits_for_the_end_of_quiet_hours_and_email_does_not(
    app, client, login_as, push_service, mail_server, run_worker
):
    quiet_around_now(login_as("night@webpush-server.dev"), "America/New_York")
    reader = user_id(app, "night@webpush-server.dev")
    device = add_device(app, reader, push_service)
    secret = make_key(app)[1]
    body = notify_body({"user_id": reader}, kind="campaign_succeeded")
    assert (
        client.post("/api/v1/notifications", json=body, headers=bearer(secret)).status_code == 202
    )
    run_worker()
    assert len(mail_server.wait_for_count(1)) == 1  # e-mail is not held
    (push,) = rows(app, Delivery, Delivery.channel == "push")
    assert push.status == "pending" and push_service.received == []
    ends_in = push.next_attempt_at - utcnow()
    assert timedelta(minutes=55) < ends_in <= timedelta(hours=1)
    with app.app_context():
        assert sweep_outbox() == 0  # not due yet: the sweeper leaves it
        # The window ends (time passes): the sweeper hands it over, the device gets it.
        db.session.execute(update(Delivery).values(next_attempt_at=utcnow()))
        db.session.commit()
        assert sweep_outbox() == 1
    run_worker()
    (received,) = push_service.wait_for_count(1)
    assert received.endpoint == device.endpoint and received.urgency == "normal"


def test_a_push_that_would_expire_first_goes_now_with_urgency_low(
    app, client, login_as, push_service, run_worker
):
    quiet_around_now(login_as("seoul@webpush-server.dev"), "Asia/Seoul")
    reader = user_id(app, "seoul@webpush-server.dev")
    add_device(app, reader, push_service)
    secret = make_key(app)[1]
    body = notify_body({"user_id": reader}, urgency="high", ttl=600)
    assert (
        client.post("/api/v1/notifications", json=body, headers=bearer(secret)).status_code == 202
    )
    run_worker()
    (received,) = push_service.wait_for_count(1)
    assert received.urgency == "low"


def test_the_test_notification_is_never_held(app, login_as, push_service, run_worker):
    api = login_as("tester@webpush-server.dev")
    quiet_around_now(api, "Europe/Berlin")
    add_device(app, user_id(app, "tester@webpush-server.dev"), push_service)
    assert api.post("/api/push/test").status_code == 202
    run_worker()
    assert len(push_service.wait_for_count(1)) == 1


SEOUL = ZoneInfo("Asia/Seoul")


def next_local(clock: time, zone: ZoneInfo) -> datetime:
    """Return the next wall-clock time `clock` in zone, at least an hour from now."""
    soon = (utcnow() + timedelta(hours=1)).astimezone(zone)
    at = datetime.combine(soon.date(), clock, tzinfo=zone)
    return at if at >= soon else at + timedelta(days=1)


@pytest.mark.parametrize("clock", [time(23, 30), time(0, 30)], ids=["before", "after"])
def test_a_scheduled_api_notice_released_in_quiet_hours_across_midnight_waits_for_their_end(
    app, client, login_as, push_service, clock
):
    api = login_as("owl@webpush-server.dev")
    prefs = {
        "timezone": "Asia/Seoul",
        "quiet_hours": {"start": "22:00", "end": "07:00"},  # across midnight
        "kinds": {"announcement": {"push": True, "email": True, "sms": True, "route": "all"}},
    }
    assert api.put("/api/preferences", prefs).status_code == 200
    reader = user_id(app, "owl@webpush-server.dev")
    add_device(app, reader, push_service)
    with app.app_context():
        # A verified number (test_sms.py covers verifying one).
        pref = db.session.get(Preference, reader)
        pref.phone_number, pref.phone_verified_at = "+821012345678", utcnow()
        db.session.commit()
    released_at = next_local(clock, SEOUL)  # 23:30 or 00:30 in Seoul, inside the window
    morning = datetime.combine(
        released_at.date() + timedelta(days=1 if clock.hour >= 22 else 0), time(7), tzinfo=SEOUL
    )
    secret = make_key(app)[1]
    send_at = (released_at - timedelta(minutes=5)).isoformat()
    for title, ttl in (("Lasts the night", 86_400), ("Gone in an hour", 3_600)):
        body = notify_body({"user_id": reader}, title=title, ttl=ttl, send_at=send_at)
        answer = client.post("/api/v1/notifications", json=body, headers=bearer(secret))
        assert answer.status_code == 202 and answer.json["status"] == "scheduled", answer.text
    with app.app_context():
        assert release_due(at=released_at) == 2
    lasting, brief = rows(app, Notification, Notification.user_id == reader)
    due = {
        (d.notification_id, d.channel): as_utc(d.next_attempt_at)
        for d in rows(app, Delivery, Delivery.status == "pending")
    }
    # Push and SMS wait for 07:00 in Seoul (the next morning, or this one after midnight).
    assert due[(lasting.id, "push")] == morning.astimezone(UTC)
    assert due[(lasting.id, "sms")] == morning.astimezone(UTC)
    assert due[(lasting.id, "email")] < released_at  # e-mail is never held
    assert lasting.urgency == "normal"
    # Expiring before 07:00: not held, it goes at release with Urgency low.
    assert due[(brief.id, "push")] < released_at and due[(brief.id, "sms")] < released_at
    assert brief.urgency == "low"

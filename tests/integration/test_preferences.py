"""GET/PUT /api/preferences and /settings/notifications; they decide channels at record time."""

from __future__ import annotations

import pytest

from tests.factories import add_device
from tests.helpers import csrf_from, rows
from tests.service_api import bearer, make_key, notify_body
from webpush_server.auth.models import User
from webpush_server.notifications.models import Delivery, Notification


@pytest.fixture
def app(make_app, mail_server):
    """The app with e-mail on: MAIL_URL is the test's SMTP server."""
    mail_server.clear()
    return make_app(MAIL_URL=mail_server.url, PUBLIC_URL="http://public.test")


def test_defaults_per_kind_for_a_user_who_never_chose(patron_api):
    prefs = patron_api.get("/api/preferences").json
    assert prefs["language"] == "en" and prefs["timezone"] == "Asia/Seoul"
    assert prefs["quiet_hours"] is None and prefs["phone"] is None and prefs["digest_hour"] == 8
    assert prefs["email"]["address"] == "reader@webpush-server.dev"
    kinds = prefs["kinds"]
    assert kinds["book_available"] == {
        "push": True,
        "email": True,
        "sms": False,
        "digest": False,
        "route": "first",
    }
    assert kinds["announcement"] == {
        "push": True,
        "email": False,
        "sms": False,
        "digest": False,
        "route": "all",
    }
    assert kinds["campaign_succeeded"]["email"] and kinds["campaign_succeeded"]["route"] == "all"
    # Internal kinds are not the user's to tune.
    assert "test" not in kinds and "password_reset" not in kinds


def test_put_merges_down_to_one_field_of_one_kind(patron_api):
    first = patron_api.put("/api/preferences", {"kinds": {"announcement": {"email": True}}})
    assert first.status_code == 200, first.text
    assert first.json["kinds"]["announcement"]["email"] is True
    second = patron_api.put(
        "/api/preferences",
        {"digest_hour": 20, "quiet_hours": {"start": "22:30", "end": "07:00"}, "language": "ko"},
    )
    prefs = second.json
    assert prefs["kinds"]["announcement"]["email"] is True  # kept
    assert prefs["kinds"]["announcement"]["push"] is True  # default, untouched
    assert prefs["digest_hour"] == 20 and prefs["language"] == "ko"
    assert prefs["quiet_hours"] == {"start": "22:30", "end": "07:00"}
    assert patron_api.get("/api/preferences").json == prefs
    cleared = patron_api.put("/api/preferences", {"quiet_hours": None}).json
    assert cleared["quiet_hours"] is None and cleared["digest_hour"] == 20


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"language": "tlh"}, "language"),
        ({"digest_hour": 24}, "digest_hour"),
        ({"digest_hour": True}, "digest_hour"),
        ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
        ({"quiet_hours": {"start": "22:00"}}, "quiet_hours"),
        ({"kinds": {"nope": {"push": False}}}, "kinds.nope"),
        ({"kinds": {"book_available": {"push": "yes"}}}, "kinds.book_available.push"),
        ({"kinds": {"book_available": {"route": "sometimes"}}}, "kinds.book_available.route"),
        ({"kinds": {"announcement": {"days_before": 3}}}, "kinds.announcement.days_before"),
        ({"kinds": {"hold_expired": {"push": False, "email": False}}}, "kinds.hold_expired"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(patron_api, body, field):
    before = patron_api.get("/api/preferences").json
    # A valid part beside the bad one is not written either.
    answer = patron_api.put("/api/preferences", {"digest_hour": 5, **body})
    assert answer.status_code == 400, answer.text
    assert answer.json["error"]["field"] == field
    assert patron_api.get("/api/preferences").json == before


def test_preferences_need_a_login_and_a_csrf_token(client, patron_api):
    assert client.get("/api/preferences").status_code == 401
    forged = patron_api.client.put("/api/preferences", json={"digest_hour": 3})
    assert forged.status_code == 400
    assert patron_api.get("/api/preferences").json["digest_hour"] == 8


def test_preferences_decide_channels_and_the_service_api_only_narrows_them(
    app, client, patron_api, push_service
):
    (user,) = rows(app, User)
    add_device(app, user.id, push_service)
    secret = make_key(app)[1]

    def channels_of_a_new_notice(**fields) -> list[str]:
        body = notify_body({"user_id": user.id}, **fields)
        answer = client.post("/api/v1/notifications", json=body, headers=bearer(secret))
        assert answer.status_code == 202, answer.text
        (newest,) = rows(app, Notification)[-1:]
        return sorted(r.channel for r in rows(app, Delivery, Delivery.notification_id == newest.id))

    assert channels_of_a_new_notice() == ["push"]  # announcement: push only by default
    patron_api.put("/api/preferences", {"kinds": {"announcement": {"email": True}}})
    assert channels_of_a_new_notice() == ["email", "push"]
    assert channels_of_a_new_notice(channels=["push"]) == ["push"]  # narrowed
    patron_api.put("/api/preferences", {"kinds": {"announcement": {"push": False}}})
    # The sender cannot widen them: push is off.
    assert channels_of_a_new_notice(channels=["push", "email"]) == ["email"]


def test_the_settings_page_is_a_stacked_matrix_that_saves_without_script(app, patron_api):
    page = patron_api.get("/settings/notifications").text
    assert 'class="table stack"' in page and 'data-label="E-mail"' in page
    assert 'id="book_available-email"' in page and "checked" in page
    assert "Cannot be turned off entirely" in page  # hold_expired says why
    form = {"csrf_token": csrf_from(page), "language": "en", "timezone": "Europe/Berlin"}
    form |= {"book_available.push": "on", "book_available.route": "all", "digest_hour": "7"}
    form |= {"hold_expired.email": "on"}  # everything else unticked
    saved = patron_api.client.post("/settings/notifications", data=form)
    assert saved.status_code == 302
    prefs = patron_api.get("/api/preferences").json
    assert prefs["timezone"] == "Europe/Berlin" and prefs["digest_hour"] == 7
    assert prefs["kinds"]["book_available"]["email"] is False
    assert prefs["kinds"]["book_available"]["route"] == "all"
    assert prefs["kinds"]["hold_expired"] == prefs["kinds"]["hold_expired"] | {"email": True}
    # Turning a kind that must reach you off everywhere is refused, and the page says why.
    form.pop("hold_expired.email")
    refused = patron_api.client.post("/settings/notifications", data=form)
    assert refused.status_code == 400 and "must reach you" in refused.text
    assert patron_api.get("/api/preferences").json["kinds"]["hold_expired"]["email"] is True


def test_put_names_every_bad_field_at_once(patron_api):
    before = patron_api.get("/api/preferences").json
    body = {"timezone": "Mars/Olympus", "digest_hour": 24, "language": "en"}
    answer = patron_api.put("/api/preferences", body)
    assert answer.status_code == 400, answer.text
    error = answer.json["error"]
    assert error["field"] == "timezone" and "Time zone" in error["message"]
    assert [item["field"] for item in error["fields"]] == ["timezone", "digest_hour"]
    assert "Digest hour" in error["fields"][1]["message"]
    assert patron_api.get("/api/preferences").json == before


def test_the_settings_page_shows_each_error_beside_its_field_and_keeps_the_typing(patron_api):
    page = patron_api.get("/settings/notifications").text
    form = {"csrf_token": csrf_from(page), "language": "en", "timezone": "Mars/Olympus"}
    form |= {"quiet_start": "22:00", "quiet_end": "22:00", "digest_hour": "31"}
    form |= {"hold_expired.email": "on", "book_available.email": "on"}
    refused = patron_api.client.post("/settings/notifications", data=form)
    assert refused.status_code == 400
    text = refused.text
    assert "3 fields need a change" in text
    assert 'id="timezone-error"' in text and 'id="digest_hour-error"' in text
    assert 'id="quiet_end-error"' in text
    zone = text[text.index('id="timezone"') : text.index('id="timezone-error"')]
    assert 'value="Mars/Olympus"' in zone and 'aria-invalid="true"' in zone
    assert "Time zone: an IANA time zone" in text[text.index('id="timezone-error"') :][:200]
    hour = text[text.index('id="digest_hour"') : text.index('id="digest_hour-error"')]
    assert 'value="31"' in hour and 'aria-describedby="digest_hour-error"' in hour
    assert 'id="timezone-error" data-field="timezone" role="alert"' in text
    assert patron_api.get("/api/preferences").json["timezone"] != "Mars/Olympus"

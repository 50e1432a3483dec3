"""Sessions that end on the server (docs/api.md, "Accounts and safety"), the password page and
policy, and the CSRF token rotated at login."""

from __future__ import annotations

import pytest

from tests.helpers import PASSWORD, Api, csrf_from
from webpush_server.errors import Invalid

EMAIL = "sessions@webpush-server.dev"
NEW_PASSWORD = "purple elephant marmalade"


def cookie_of(api: Api) -> str:
    return api.client.get_cookie("session").value


def replay(app, cookie: str):
    """A new client that presents only a captured session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief


def test_a_cookie_captured_before_logout_is_refused_afterwards(app, make_user, login_as):
    make_user(EMAIL)
    api = login_as(EMAIL)
    captured = cookie_of(api)
    assert replay(app, captured).get("/api/notifications").status_code == 200
    assert api.post("/logout", data={"csrf_token": api.csrf}).status_code == 302
    assert replay(app, captured).get("/api/notifications").status_code == 401
    page = replay(app, captured).get("/notifications")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_logout_ends_only_that_session(app, make_user, login_as):
    make_user(EMAIL)
    phone, laptop = login_as(EMAIL), login_as(EMAIL)
    phone.post("/logout", data={"csrf_token": phone.csrf})
    assert laptop.get("/api/notifications").status_code == 200


def test_revoke_ends_every_other_session_and_keeps_this_one(app, make_user, login_as):
    make_user(EMAIL)
    other_user = make_user("bystander@webpush-server.dev")
    assert other_user
    here, there, elsewhere = login_as(EMAIL), login_as(EMAIL), login_as(EMAIL)
    bystander = login_as("bystander@webpush-server.dev")
    answer = here.post("/account/sessions/revoke")
    assert answer.status_code == 200 and answer.json == {"ended": 2}
    assert here.get("/api/notifications").status_code == 200
    assert there.get("/api/notifications").status_code == 401
    assert elsewhere.get("/api/notifications").status_code == 401
    assert bystander.get("/api/notifications").status_code == 200


def test_revoke_from_the_form_needs_the_csrf_token(app, make_user, login_as):
    make_user(EMAIL)
    here, there = login_as(EMAIL), login_as(EMAIL)
    assert here.client.post("/account/sessions/revoke").status_code == 400
    assert there.get("/api/notifications").status_code == 200
    form = here.client.post("/account/sessions/revoke", data={"csrf_token": here.csrf})
    assert form.status_code == 302
    assert "Signed out 1 other session" in here.get(form.headers["Location"]).text
    assert there.get("/api/notifications").status_code == 401


def test_password_change_by_json_ends_other_sessions_and_keeps_this_one(app, make_user, login_as):
    make_user(EMAIL)
    here, there = login_as(EMAIL), login_as(EMAIL)
    answer = here.post(
        "/account/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    assert here.get("/api/notifications").status_code == 200
    assert there.get("/api/notifications").status_code == 401
    fresh = app.test_client()
    token = csrf_from(fresh.get("/login").text)
    old = fresh.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
    assert old.status_code == 401
    assert login_as(EMAIL, password=NEW_PASSWORD).get("/api/notifications").status_code == 200


def test_password_form_says_what_is_wrong(app, make_user, login_as):
    make_user(EMAIL)
    api = login_as(EMAIL)
    page = api.get("/account/password")
    assert page.status_code == 200
    assert 'name="current_password"' in page.text and 'name="new_password"' in page.text
    wrong = api.client.post(
        "/account/password",
        data={"csrf_token": api.csrf, "current_password": "nope", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    common = api.client.post(
        "/account/password",
        data={"csrf_token": api.csrf, "current_password": PASSWORD, "new_password": "password1234"},
    )
    assert common.status_code == 400 and "most common passwords" in common.text
    done = api.client.post(
        "/account/password",
        data={"csrf_token": api.csrf, "current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert done.status_code == 302
    assert "Password changed" in api.get(done.headers["Location"]).text


def test_password_json_refusals_name_the_field(app, make_user, login_as):
    make_user(EMAIL)
    api = login_as(EMAIL)
    short = api.post(
        "/account/password", json={"current_password": PASSWORD, "new_password": "short pw"}
    )
    assert short.status_code == 400 and short.json["error"]["field"] == "new_password"
    wrong = api.post(
        "/account/password", json={"current_password": "x", "new_password": NEW_PASSWORD}
    )
    assert wrong.status_code == 400 and wrong.json["error"]["field"] == "current_password"


def test_the_password_page_is_linked_from_the_header(app, make_user, login_as):
    make_user(EMAIL)
    assert 'href="/account/password"' in login_as(EMAIL).get("/notifications").text


def test_the_csrf_token_is_rotated_at_login(app, make_user):
    make_user(EMAIL)
    client = app.test_client()
    before = csrf_from(client.get("/login").text)
    client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": before})
    after = csrf_from(client.get("/notifications").text)
    assert after != before
    stale = client.post("/api/push/test", headers={"X-CSRFToken": before})
    assert stale.status_code == 400 and stale.json["error"]["code"] == "csrf"
    assert client.post("/api/push/test", headers={"X-CSRFToken": after}).status_code == 202


@pytest.mark.parametrize(
    "password",
    ["short", "elevenchars", "password12345", "qwertyuiop123", "aaaaaaaaaaaaaaa", "Iloveyou!!!!"],
)
def test_the_policy_refuses_short_and_common_passwords(app, password):
    from webpush_server.auth.services import create_user

    with app.app_context(), pytest.raises(Invalid) as refused:
        create_user("weak@webpush-server.dev", password)
    assert refused.value.field == "password"


def test_demo_and_test_passwords_pass_the_policy():
    from webpush_server.auth.passwords import check_password_policy, common_passwords
    from webpush_server.demo import DEMO_PASSWORD

    assert len(common_passwords()) >= 300
    for password in (DEMO_PASSWORD, PASSWORD, NEW_PASSWORD, "long enough pw"):
        assert check_password_policy(password) == password

"""Password reset by e-mail: the real SMTP server, the real worker, through HTTP."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import update

from tests.helpers import PASSWORD, Api, csrf_from, rows
from webpush_server.auth.models import PasswordReset
from webpush_server.extensions import db
from webpush_server.notifications.models import Delivery
from webpush_server.timeutil import utcnow

PUBLIC = "http://public.test"
NEW_PASSWORD = "violet lantern over a quiet harbour"
LINK = re.compile(r"http://public\.test(/account/password-reset/[A-Za-z0-9_.-]+)")


@pytest.fixture
def app(make_app, mail_server):
    """The app with e-mail on: MAIL_URL is the test's SMTP server."""
    mail_server.clear()
    return make_app(MAIL_URL=mail_server.url, PUBLIC_URL=PUBLIC)


def ask(client, email: str):
    token = csrf_from(client.get("/account/password-reset").text)
    return client.post("/account/password-reset", data={"email": email, "csrf_token": token})


def link_from(mail) -> str:
    (path,) = set(LINK.findall(mail.text))
    assert path in mail.html
    return path


def test_the_answer_is_the_same_for_known_and_unknown_addresses(
    app, make_user, mail_server, run_worker
):
    make_user("reader@webpush-server.dev")
    known = ask(app.test_client(), "Reader@webpush-server.dev")
    unknown = ask(app.test_client(), "nobody@webpush-server.dev")
    assert known.status_code == unknown.status_code == 202
    assert known.text == unknown.text.replace(csrf_from(unknown.text), csrf_from(known.text)), (
        "the pages differ only in their CSRF token"
    )
    run_worker()
    (mail,) = mail_server.wait_for_count(1)
    assert mail.rcpt_tos == ["reader@webpush-server.dev"]
    assert mail["Subject"] == "Reset your password"
    assert "within 30 minutes" in mail.text
    # Every e-mail carries the one-click link (CONTRACT), but it cannot stop resets.
    unsubscribe = mail["List-Unsubscribe"]
    assert unsubscribe.startswith("<") and "/unsubscribe/" in unsubscribe
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = urlsplit(unsubscribe[1:-1]).path
    clicked = app.test_client().post(
        path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert clicked.status_code == 200 and "cannot be turned off" in clicked.text
    again = ask(app.test_client(), "reader@webpush-server.dev")
    assert again.status_code == 202
    run_worker()
    assert len(mail_server.wait_for_count(2)) == 2  # the next reset is still e-mailed
    first, second = rows(app, Delivery)
    assert first.channel == second.channel == "email"  # no push row: by e-mail only
    # The JSON answer is the same too.
    api = Api(app.test_client())
    token = csrf_from(api.client.get("/account/password-reset").text)
    answers = [
        api.client.post(
            "/account/password-reset", json={"email": email}, headers={"X-CSRFToken": token}
        )
        for email in ("reader@webpush-server.dev", "nobody@webpush-server.dev")
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json == answers[1].json and "If an account" in answers[0].json["message"]
    bad = api.client.post(
        "/account/password-reset", json={"email": 7}, headers={"X-CSRFToken": token}
    )
    assert bad.status_code == 400 and bad.json["error"]["field"] == "email"


def test_the_link_sets_a_new_password_once_and_ends_every_session(
    app, login_as, mail_server, run_worker
):
    old_session = login_as("reader@webpush-server.dev")
    assert old_session.get("/api/notifications").status_code == 200
    ask(app.test_client(), "reader@webpush-server.dev")
    run_worker()
    (mail,) = mail_server.wait_for_count(1)
    path = link_from(mail)
    browser = app.test_client()
    form = browser.get(path)
    assert form.status_code == 200 and 'name="new_password"' in form.text
    weak = browser.post(path, data={"new_password": "short", "csrf_token": csrf_from(form.text)})
    assert weak.status_code == 400 and 'id="reset-error"' in weak.text
    done = browser.post(
        path, data={"new_password": NEW_PASSWORD, "csrf_token": csrf_from(form.text)}
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    # The old session is over, the old password is wrong, the new one works.
    assert old_session.get("/api/notifications").status_code == 401
    stranger = app.test_client()
    token = csrf_from(stranger.get("/login").text)
    wrong = stranger.post(
        "/login",
        data={"email": "reader@webpush-server.dev", "password": PASSWORD, "csrf_token": token},
    )
    assert wrong.status_code == 401
    fresh = Api(app.test_client())
    fresh.login("reader@webpush-server.dev", NEW_PASSWORD)
    assert fresh.get("/api/notifications").status_code == 200
    # Single use: the same link again is refused.
    again = browser.get(path)
    assert again.status_code == 400 and "expired or was used" in again.text
    replay = browser.post(
        path, data={"new_password": "another long passphrase", "csrf_token": csrf_from(again.text)}
    )
    assert replay.status_code == 400


def test_a_link_older_than_30_minutes_is_refused_and_a_forged_one_too(
    app, make_user, mail_server, run_worker
):
    make_user("reader@webpush-server.dev")
    ask(app.test_client(), "reader@webpush-server.dev")
    run_worker()
    path = link_from(mail_server.wait_for_count(1)[0])
    with app.app_context():
        db.session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert app.test_client().get(path).status_code == 400
    forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    assert app.test_client().get(forged).status_code == 400

"""E-mail as a channel of the one outbox: real SMTP (aiosmtpd), the real worker and sweeper."""

from __future__ import annotations

import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.factories import add_device, create_user
from tests.helpers import free_port, rows
from tests.pushservice import Reply
from tests.service_api import bearer, make_key, notify_body
from webpush_server.auth.models import User
from webpush_server.channels.mailbox import start_embedded
from webpush_server.channels.models import Preference
from webpush_server.extensions import db
from webpush_server.jobs.delivery import deliver
from webpush_server.jobs.sweep import sweep_outbox
from webpush_server.notifications.models import Delivery

PUBLIC = "http://public.test"


@pytest.fixture
def app(make_app, mail_server):
    """The app with e-mail on: MAIL_URL is the test's SMTP server."""
    mail_server.clear()
    return make_app(MAIL_URL=mail_server.url, PUBLIC_URL=PUBLIC, FALLBACK_AFTER_SECONDS=0)


@pytest.fixture
def key(app):
    return make_key(app)[1]


def notify(client, key, user_id, kind="campaign_succeeded", **fields):
    body = notify_body({"user_id": user_id}, kind=kind, **fields)
    response = client.post("/api/v1/notifications", json=body, headers=bearer(key))
    assert response.status_code == 202, response.text
    return response.json["id"]


def preference(app, user_id):
    with app.app_context():
        row = db.session.get(Preference, user_id)
        db.session.expunge_all()
        return row


def email_rows(app):
    return rows(app, Delivery, Delivery.channel == "email")


def test_a_campaign_result_is_pushed_and_emailed_as_multipart_with_one_click_unsubscribe(
    app, client, key, make_user, push_service, mail_server, run_worker
):
    reader = make_user("reader@webpush-server.dev", name="Rita Reader")
    add_device(app, reader, push_service)
    request_id = notify(client, key, reader, title="Your campaign met its goal")
    run_worker()
    push_service.wait_for_count(1)
    (mail,) = mail_server.wait_for_count(1)
    assert mail.rcpt_tos == ["reader@webpush-server.dev"]
    assert mail["Subject"] == "Your campaign met its goal"
    assert mail["To"] == "Rita Reader <reader@webpush-server.dev>"
    assert mail.message.get_content_type() == "multipart/alternative"
    assert "Hello Rita Reader," in mail.text and "We close at 16:00" in mail.text
    assert '<html lang="en">' in mail.html and "We close at 16:00" in mail.html
    (row,) = email_rows(app)
    assert row.status == "sent" and row.address == "reader@webpush-server.dev"
    assert mail["Message-ID"] == f"<delivery-{row.id}@webpush-server.dev>"
    assert f"{PUBLIC}/n/{row.notification_id}" in mail.text
    unsubscribe = mail["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{PUBLIC}/unsubscribe/") and unsubscribe.endswith(">")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # On the wire as a plain <URL> (RFC 2369), never folded into an encoded word.
    assert f"\r\nList-Unsubscribe: {unsubscribe}\r\n".encode() in mail.raw

    status = client.get(f"/api/v1/notifications/{request_id}", headers=bearer(key)).json
    channels = status["recipients"][0]["channels"]
    assert channels["push"]["sent"] == 1 and channels["email"]["sent"] == 1
    assert status["status"] == "sent"

    # RFC 8058: the mail provider posts the URL, with no cookie and no CSRF token.
    anonymous = app.test_client()
    path = urlsplit(unsubscribe[1:-1]).path
    answer = anonymous.post(
        path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200 and b"no more e-mail" in answer.data
    assert anonymous.post(path[:-3] + "xyz").status_code == 404  # a forged token does nothing
    assert preference(app, reader).kinds == {"campaign_succeeded": {"email": False}}
    # The next one of that kind is pushed only; another kind still e-mails.
    notify(client, key, reader, title="Another goal met")
    notify(client, key, reader, kind="campaign_failed", title="A campaign missed its goal")
    run_worker()
    push_service.wait_for_count(3)
    assert [m["Subject"] for m in mail_server.wait_for_count(2)] == [
        "Your campaign met its goal",
        "A campaign missed its goal",
    ]


def test_push_first_kind_emails_only_when_the_push_did_not_arrive(
    app, client, key, make_user, push_service, mail_server, run_worker
):
    delivered = make_user("delivered@webpush-server.dev")
    add_device(app, delivered, push_service)
    unlucky = make_user("unlucky@webpush-server.dev")
    gone = add_device(app, unlucky, push_service)
    push_service.respond(gone.endpoint, Reply(410))
    nodevice = make_user("nodevice@webpush-server.dev")
    for user in (delivered, unlucky, nodevice):
        notify(client, key, user, kind="book_available", title="Your book is ready")
    # With no device there is nothing to wait for: e-mailed at once.
    run_worker()
    assert [m.rcpt_tos for m in mail_server.wait_for_count(1)] == [["nodevice@webpush-server.dev"]]
    # The fallbacks fall due (FALLBACK_AFTER_SECONDS=0 here); the sweeper hands them over.
    with app.app_context():
        assert sweep_outbox() == 2
    run_worker()
    by_address = {row.address: row.status for row in email_rows(app)}
    assert by_address == {
        "delivered@webpush-server.dev": "skipped",
        "unlucky@webpush-server.dev": "sent",
        "nodevice@webpush-server.dev": "sent",
    }
    assert sorted(m.rcpt_tos[0] for m in mail_server.wait_for_count(2)) == [
        "nodevice@webpush-server.dev",
        "unlucky@webpush-server.dev",
    ]


def test_smtp_4xx_retries_and_5xx_three_times_marks_the_address_bouncing(
    app, client, key, make_user, mail_server, run_worker
):
    later = make_user("later@webpush-server.dev")
    mail_server.refuse("later@webpush-server.dev", 451)
    notify(client, key, later)
    run_worker()
    (row,) = email_rows(app)
    assert row.status == "pending" and row.next_attempt_at is not None
    assert row.last_status_code == 451 and "451" in row.last_error
    mail_server.allow("later@webpush-server.dev")
    run_worker()  # the retry job RQ scheduled (PUSH_RETRY_BASE_SECONDS is 0.01 here)
    with app.app_context():
        sweep_outbox()
    run_worker()
    assert [row.status for row in email_rows(app)] == ["sent"]
    assert len(mail_server.wait_for_count(1)) == 1

    nobody = make_user("nobody@webpush-server.dev")
    mail_server.refuse("nobody@webpush-server.dev", 550)
    for n in range(3):
        notify(client, key, nobody, title=f"Notice {n}")
        run_worker()
    refused = [row for row in email_rows(app) if row.address == "nobody@webpush-server.dev"]
    assert [row.status for row in refused] == ["failed"] * 3
    assert all(row.last_status_code == 550 for row in refused)
    pref = preference(app, nobody)
    assert pref.email_bounces == 3 and pref.email_bouncing_at is not None
    # A bouncing address gets no more e-mail rows at all.
    notify(client, key, nobody, title="Notice 4")
    assert len([r for r in email_rows(app) if r.address == "nobody@webpush-server.dev"]) == 3


def test_a_mail_server_that_does_not_answer_means_retry(make_app):
    closed = make_app(MAIL_URL=f"smtp://127.0.0.1:{free_port()}", PUBLIC_URL=PUBLIC)
    client = closed.test_client()
    secret = make_key(closed)[1]
    user = create_user(closed, "reader@webpush-server.dev")
    notify(client, secret, user)
    (row,) = email_rows(closed)
    with closed.app_context():
        assert deliver([row.id]) == {"pending": 1}
    (row,) = email_rows(closed)
    assert row.status == "pending" and row.attempts == 1 and row.next_attempt_at is not None
    assert "mail server smtp://127.0.0.1" in row.last_error


def test_an_email_speaks_the_readers_language_and_shows_their_time_zone(
    app, client, key, login_as, mail_server, run_worker
):
    reader = login_as("reader@webpush-server.dev", name="김독자")
    answer = reader.put("/api/preferences", {"language": "ko", "timezone": "America/New_York"})
    assert answer.status_code == 200, answer.text
    with app.app_context():
        user_id = db.session.scalar(select(User.id))
    notify(client, key, user_id)
    run_worker()
    (mail,) = mail_server.wait_for_count(1)
    assert mail["Content-Language"] == "ko"
    assert "김독자님, 안녕하세요." in mail.text and "이메일 중단" in mail.text
    assert '<html lang="ko">' in mail.html
    (row,) = email_rows(app)
    # The shared formatter in Korean, in the reader's zone: 2026년 12월 1일 (화) 오후 5:34 EST.
    local = row.created_at.astimezone(ZoneInfo("America/New_York"))
    assert f"{local.year}년 {local.month}월 {local.day}일" in mail.text
    assert re.search(r"오[전후] \d+:\d\d E[SD]T", mail.text), mail.text


def test_the_embedded_mail_server_keeps_every_message_for_admins(make_app, tmp_path, login_as):
    keep = tmp_path / "mail"
    controller, url = start_embedded(keep)
    try:
        kept = make_app(MAIL_URL=url, MAIL_KEEP_DIR=str(keep), PUBLIC_URL=PUBLIC)
        secret = make_key(kept)[1]
        user = create_user(kept, "reader@webpush-server.dev")
        notify(kept.test_client(), secret, user, title="Kept <for> admins")
        (row,) = email_rows(kept)
        with kept.app_context():
            assert deliver([row.id]) == {"sent": 1}
    finally:
        controller.stop()
    admin = login_as("boss@webpush-server.dev", role="admin", app=kept)
    page = admin.client.get("/admin/mail")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Kept &lt;for&gt; admins" in html and "reader@webpush-server.dev" in html
    assert "We close at 16:00" in html  # the text part
    assert "&lt;html lang=&#34;en&#34;&gt;" in html  # the HTML part, as source, never rendered
    patron = login_as("reader@webpush-server.dev", app=kept)
    assert patron.client.get("/admin/mail").status_code == 403
    # The dashboard counts e-mail as its own row beside the push services.
    dashboard = admin.client.get("/admin/").get_data(as_text=True)
    assert re.search(r'data-figure="hour\|email\|sent"[^>]*>1<', dashboard)

"""Honest, human messages on the funding and account pages, through the test client: forms
that name fields as they are labelled, show every error at once and keep what was typed; a
closed campaign's edit page; a confirm step before redeeming; demo data and demo logins; the
test notification's device count."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from sqlalchemy import select

from tests.factories import add_campaign, campaign_json, move_deadline, subscribe
from tests.helpers import count, csrf_from
from webpush_server.extensions import db
from webpush_server.funding.models import Campaign, Coupon, Pledge
from webpush_server.funding.services import close_campaign
from webpush_server.library.models import Book, Loan
from webpush_server.timeutil import utcnow

NEW = "/funding/admin/campaigns/new"


def field_errors(html: str) -> dict[str, str]:
    """Each error shown beside a field: field name → message."""
    found = re.findall(
        r'<p class="form-message error field-error" id="([a-z_]+)-error" data-field="\1"'
        r"[^>]*>([^<]*)</p>",
        html,
    )
    return {name: unescape(message) for name, message in found}


def test_the_campaign_form_shows_every_error_at_once_by_label_and_keeps_the_input(app, login_as):
    boss = login_as("boss@webpush-server.dev", "admin")
    typed = {
        "title": "",
        "description": "Keep <this> text",
        "goal_amount": "lots",
        "deadline": "2001-01-01T09:00",
        "coupon_discount": "150",
        "coupon_valid_days": "21",
    }
    page = boss.post(NEW, data=typed)
    assert page.status_code == 400
    assert field_errors(page.text) == {
        "title": "Title is required.",
        "goal_amount": "Goal (won) must be a whole number from 1 to 1,000,000,000,000.",
        "deadline": "Deadline must be in the future.",
        "coupon_discount": "Coupon discount (%) must be a whole number from 1 to 100.",
    }
    summary = re.search(r'id="form-error"[^>]*>(.*?)</div>', page.text, re.S)
    assert summary is not None
    assert " ".join(summary.group(1).split()) == (
        "4 fields need a change: Title, Goal (won), Deadline, Coupon discount (%). "
        "Nothing was saved."
    )
    # What was typed is still there, bad values included, escaped.
    assert "Keep &lt;this&gt; text</textarea>" in page.text
    for name in ("goal_amount", "deadline", "coupon_discount", "coupon_valid_days"):
        assert f'name="{name}" type=' in page.text
        assert re.search(rf'id="{name}" name="{name}" [^>]*value="{typed[name]}"', page.text)
    # Each bad field points at its message; the good one does not.
    assert re.search(r'id="goal_amount"[^>]*aria-describedby="goal_amount-error"', page.text)
    assert not re.search(r'id="coupon_valid_days"[^>]*aria-invalid', page.text)
    assert count(app, Campaign) == 0

    # The API names the same field first, with the same words.
    api = boss.post("/api/funding/campaigns", json=campaign_json(goal_amount=0, title=""))
    assert api.status_code == 400
    assert api.json["error"]["field"] == "title"
    assert api.json["error"]["message"] == "Title is required."


def test_a_closed_campaigns_edit_page_says_why_it_cannot_be_saved(app, login_as):
    boss = login_as("boss@webpush-server.dev", "admin")
    campaign_id = add_campaign(boss, title="Old lamps")
    move_deadline(app, campaign_id, utcnow() - timedelta(seconds=1))
    with app.app_context():
        assert close_campaign(campaign_id) == "failed"
    url = f"/funding/admin/campaigns/{campaign_id}/edit"

    page = boss.get(url)
    assert page.status_code == 200
    assert 'id="closed-note"' in page.text
    assert "This campaign failed when it closed on" in page.text
    assert "A closed campaign cannot be edited" in page.text
    assert "Save</button>" not in page.text
    assert re.search(
        r'id="title" name="title" type="text" value="Old lamps"[^>]* disabled', page.text
    )

    # Posting anyway (an old tab): the reason is that it closed, not the past deadline.
    fields = campaign_json(title="New lamps") | {"deadline": "2001-01-01T09:00"}
    posted = boss.post(url, data=fields)
    assert posted.status_code == 409
    assert "A closed campaign cannot be edited" in posted.text
    assert "Deadline must be in the future" not in posted.text
    assert field_errors(posted.text) == {}
    with app.app_context():
        assert db.session.get_one(Campaign, campaign_id).title == "Old lamps"
    # The API says the same: 409 closed, before looking at the deadline.
    api = boss.put(f"/api/funding/campaigns/{campaign_id}", json=fields)
    assert api.status_code == 409 and api.json["error"]["code"] == "closed"


def test_a_bad_pledge_keeps_the_amount_and_names_the_field_by_its_label(app, login_as):
    boss = login_as("boss@webpush-server.dev", "admin")
    pat = login_as("pat@webpush-server.dev")
    campaign_id = add_campaign(boss)
    page = pat.post(f"/funding/campaigns/{campaign_id}/pledge", data={"amount": "0"})
    assert page.status_code == 400
    assert field_errors(page.text) == {
        "amount": "Pledge (won) must be a whole number from 1 to 1,000,000,000,000."
    }
    assert re.search(r'id="amount" name="amount"[^>]* value="0" aria-invalid="true"', page.text)
    assert '<label for="amount">Pledge (won)</label>' in page.text
    assert count(app, Pledge) == 0
    ok = pat.post(f"/funding/campaigns/{campaign_id}/pledge", data={"amount": "5000"})
    assert ok.status_code == 302 and count(app, Pledge) == 1


def test_redeeming_a_coupon_from_the_page_asks_first(app, login_as):
    boss = login_as("boss@webpush-server.dev", "admin")
    pat = login_as("pat@webpush-server.dev")
    eve = login_as("eve@webpush-server.dev")
    campaign_id = add_campaign(boss, title="Bee garden", goal_amount=1000)
    pat.post(f"/api/funding/campaigns/{campaign_id}/pledges", json={"amount": 1000})
    move_deadline(app, campaign_id, utcnow() - timedelta(seconds=1))
    with app.app_context():
        assert close_campaign(campaign_id) == "succeeded"
    (code,) = [c["code"] for c in pat.get("/api/funding/coupons").json["coupons"]]
    confirm = f"/funding/coupons/{code}/redeem"

    # My coupons links to a confirmation, not to a one-click POST.
    mine = pat.get("/funding/coupons").text
    assert f'href="{confirm}"' in mine
    assert f'action="{confirm}"' not in mine
    asked = pat.get(confirm)
    assert asked.status_code == 200
    assert "Redeem this coupon?" in asked.text and code in asked.text
    assert "a redeemed coupon is used up and cannot be used again" in asked.text
    assert f'action="{confirm}"' in asked.text and "No, keep it" in asked.text
    with app.app_context():
        # Looking at the question changes nothing.
        assert db.session.scalar(select(Coupon.status).where(Coupon.code == code)) == "active"
    # Someone else's code is not found, as in the API.
    assert eve.get(confirm).status_code == 404

    done = pat.post(confirm, data={"csrf_token": csrf_from(asked.text)})
    assert done.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Coupon.status).where(Coupon.code == code)) == "used"
    # A used coupon has no confirm step to reach: the page says why and goes back.
    again = pat.client.get(confirm, follow_redirects=True)
    assert f"Coupon {code} is used: it cannot be redeemed." in again.text


def test_demo_data_has_no_pledge_dated_in_the_future(app, runner):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    with app.app_context():
        now = utcnow()
        pledges = db.session.execute(
            select(Pledge.created_at, Campaign.deadline).join(
                Campaign, Campaign.id == Pledge.campaign_id
            )
        ).all()
    assert pledges
    assert all(created <= now and created < deadline for created, deadline in pledges)


def test_the_login_page_lists_the_demo_accounts_only_when_the_app_runs_as_the_demo(make_app):
    plain = make_app().test_client().get("/login").text
    assert "demo-accounts" not in plain and "demo-password" not in plain
    demo = make_app(DEMO_ACCOUNTS=True).test_client().get("/login").text
    rows = re.findall(
        r'<li data-role="(\w+)"><strong>\w+</strong><br><code>([^<]+)</code><br>'
        r"password <code>([^<]+)</code></li>",
        demo,
    )
    assert rows == [
        ("patron", "patron@demo.webpush-server.dev", "demo-password"),
        ("librarian", "librarian@demo.webpush-server.dev", "demo-password"),
        ("admin", "admin@demo.webpush-server.dev", "demo-password"),
    ]


def test_the_demo_setting_is_off_by_default_and_read_from_the_environment(monkeypatch):
    from webpush_server.config import defaults, from_environment

    config = defaults("/tmp")
    assert config["DEMO_ACCOUNTS"] is False
    monkeypatch.setenv("DEMO_ACCOUNTS", "1")
    from_environment(config)
    assert config["DEMO_ACCOUNTS"] is True


def test_the_test_notification_says_how_many_devices_it_reaches(app, login_as, push_service):
    pat = login_as("pat@webpush-server.dev")
    alone = pat.post("/api/push/test")
    assert alone.status_code == 202 and alone.json["devices"] == 0
    inbox_only = pat.get(f"/api/notifications/{alone.json['notification_id']}").json
    assert inbox_only["body"].startswith("Only in your inbox: no device has push turned on.")
    subscribe(pat, push_service, count=2)
    two = pat.post("/api/push/test")
    assert two.status_code == 202 and two.json["devices"] == 2
    pushed = pat.get(f"/api/notifications/{two.json['notification_id']}").json
    assert pushed["body"] == "Push works on this device."


def test_the_admin_test_notification_says_when_no_device_got_it(app, login_as, push_service):
    login_as("nodevice@ops.dev")
    reader = login_as("reader@ops.dev")
    subscribe(reader, push_service)
    admin = login_as("admin@ops.dev", role="admin")
    alone = admin.client.post(
        "/admin/test",
        data={"email": "nodevice@ops.dev", "csrf_token": admin.csrf},
        follow_redirects=True,
    )
    assert "nodevice@ops.dev has no device with push turned on, so nothing was sent by push" in (
        alone.text
    )
    assert "sent to nodevice@ops.dev" not in alone.text
    told = admin.client.post(
        "/admin/test",
        data={"email": "reader@ops.dev", "csrf_token": admin.csrf},
        follow_redirects=True,
    )
    assert re.search(r"Test notification \d+ sent to reader@ops.dev on 1 device\.", told.text)


def test_my_pledges_says_a_failed_campaigns_pledge_is_not_charged(app, login_as):
    boss = login_as("boss@webpush-server.dev", "admin")
    pat = login_as("pat@webpush-server.dev")
    missed = add_campaign(boss, title="Arcade", goal_amount=900_000)
    running = add_campaign(boss, title="Lanterns")
    for campaign_id in (missed, running):
        pat.post(f"/api/funding/campaigns/{campaign_id}/pledges", json={"amount": 700})
    move_deadline(app, missed, utcnow() - timedelta(seconds=1))
    with app.app_context():
        assert close_campaign(missed) == "failed"
    page = pat.get("/funding/pledges").text
    rows = dict(
        re.findall(r'<tr data-pledge="\d+">.*?>(Arcade|Lanterns)</a>(.*?)</tr>', page, re.S)
    )
    assert "not charged" in rows["Arcade"] and "not charged" not in rows["Lanterns"]
    assert '<table id="pledges" class="stack">' in page
    assert '<td data-label="Campaign status">' in page


def test_the_desk_check_out_names_both_bad_fields_and_keeps_the_input(app, login_as):
    desk = login_as("desk@webpush-server.dev", "librarian")
    page = desk.post("/library/desk/checkout", data={"copy_id": "999999", "email": "no@x.dev"})
    assert page.status_code == 400
    text = page.text
    copy = text[text.index('id="checkout-copy"') : text.index('id="checkout-copy-error"')]
    assert 'value="999999"' in copy and 'aria-invalid="true"' in copy
    assert 'aria-describedby="checkout-copy-error"' in copy
    email = text[text.index('id="checkout-email"') : text.index('id="checkout-email-error"')]
    assert 'value="no@x.dev"' in email and 'aria-invalid="true"' in email
    copy_error = re.search(r'id="checkout-copy-error"[^>]*role="alert">([^<]*)</p>', text)
    assert copy_error is not None and copy_error.group(1) == "There is no copy 999999."
    email_error = re.search(r'id="checkout-email-error" data-field="user_email">([^<]*)</p>', text)
    assert email_error is not None and email_error.group(1) == "No patron with e-mail no@x.dev."
    assert count(app, Loan) == 0


def test_the_password_form_names_both_bad_fields_beside_them(app, login_as):
    pat = login_as("pat@webpush-server.dev")
    typed = {"current_password": "not-my-password", "new_password": "short"}
    page = pat.post("/account/password", data=typed)
    assert page.status_code == 400
    text = page.text
    current = re.search(r'id="current_password-error"[^>]*role="alert">([^<]*)</p>', text)
    assert current is not None and current.group(1) == "The current password is wrong."
    new = re.search(r'id="new_password-error" data-field="new_password">([^<]*)</p>', text)
    assert new is not None and "New password" in unescape(new.group(1))
    assert 'aria-describedby="current_password-error"' in text
    assert 'aria-describedby="new_password-error"' in text
    assert "not-my-password" not in text and 'value="short"' not in text  # passwords never echoed


def test_adding_a_book_names_every_bad_field_and_keeps_the_input(app, login_as):
    desk = login_as("desk@webpush-server.dev", "librarian")
    books = count(app, Book)
    typed = {"title": "Dune", "author": "  ", "isbn": "978-0-00-000000-1", "copies": "0"}
    page = desk.post("/library/desk/books", data=typed)
    assert page.status_code == 400
    text = page.text
    title = text[text.index('id="book-title"') :]
    assert title.split(">", 1)[0].count('value="Dune"') == 1  # kept, and not marked wrong
    assert "aria-invalid" not in title.split(">", 1)[0]
    for name, label in (("author", "Author"), ("isbn", "ISBN"), ("copies", "Copies")):
        field = text[text.index(f'id="book-{name}"') : text.index(f'id="book-{name}-error"')]
        assert 'aria-invalid="true"' in field, name
        error = re.search(rf'id="book-{name}-error" data-field="{name}"[^>]*>([^<]*)</p>', text)
        assert error is not None and label in unescape(error.group(1)), name
    assert 'value="978-0-00-000000-1"' in text
    assert re.search(r'id="book-author-error"[^>]*role="alert"', text)  # the first is announced
    assert count(app, Book) == books  # nothing half-written

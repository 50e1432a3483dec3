"""The funding API and pages through HTTP: campaigns, pledges, follows, coupons, permissions."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, update

from tests.factories import add_campaign, campaign_json, move_deadline
from tests.helpers import Api
from webpush_server.extensions import db
from webpush_server.funding.models import Campaign, Coupon, Follow
from webpush_server.funding.services import close_campaign
from webpush_server.timeutil import utcnow


def test_only_admins_create_and_edit_campaigns(app, login_as, client):
    boss = login_as("boss@webpush-server.dev", "admin")
    patron = login_as("pat@webpush-server.dev")
    librarian = login_as("lib@webpush-server.dev", "librarian")
    assert (
        Api(app.test_client()).post("/api/funding/campaigns", json=campaign_json()).status_code
        == 401
    )
    for who in (patron, librarian):
        assert who.post("/api/funding/campaigns", json=campaign_json()).status_code == 403
        assert who.get("/funding/admin/campaigns/new").status_code == 403
    created = boss.post("/api/funding/campaigns", json=campaign_json())
    assert created.status_code == 201
    campaign_id = created.json["id"]
    assert (
        patron.put(f"/api/funding/campaigns/{campaign_id}", json=campaign_json()).status_code == 403
    )
    edited = boss.put(f"/api/funding/campaigns/{campaign_id}", json=campaign_json(title="Lamps"))
    assert edited.status_code == 200 and edited.json["title"] == "Lamps"
    listed = client.get("/api/funding/campaigns").json["campaigns"]
    assert [(c["id"], c["title"], c["status"], c["goal_amount"]) for c in listed] == [
        (campaign_id, "Lamps", "open", 100_000)
    ]


def test_campaign_input_is_validated_naming_the_field(login_as):
    boss = login_as("boss@webpush-server.dev", "admin")
    cases = {
        "goal_amount": campaign_json(goal_amount=1000.5),
        "deadline": campaign_json(deadline="2030-01-01T10:00"),  # no offset
        "coupon_discount": campaign_json(coupon_discount=0),
        "title": campaign_json(title=" "),
    }
    for field, body in cases.items():
        response = boss.post("/api/funding/campaigns", json=body)
        assert response.status_code == 400, field
        assert response.json["error"]["field"] == field
    past = campaign_json(deadline=(utcnow() - timedelta(minutes=1)).isoformat())
    assert boss.post("/api/funding/campaigns", json=past).json["error"]["field"] == "deadline"


def test_pledges_add_up_as_whole_won_and_stop_at_the_deadline(app, login_as, client):
    boss = login_as("boss@webpush-server.dev", "admin")
    pat = login_as("pat@webpush-server.dev")
    campaign_id = add_campaign(boss)
    url = f"/api/funding/campaigns/{campaign_id}/pledges"
    assert pat.post(url, json={"amount": 30_000}).status_code == 201
    assert pat.post(url, json={"amount": 25_000}).status_code == 201
    for bad in (0, -5, 1.5, "ten", True, None):
        response = pat.post(url, json={"amount": bad})
        assert response.status_code == 400 and response.json["error"]["field"] == "amount"
    (row,) = client.get("/api/funding/campaigns").json["campaigns"]
    assert row["pledged_amount"] == 55_000 and isinstance(row["pledged_amount"], int)
    assert [p["amount"] for p in pat.get("/api/funding/pledges").json["pledges"]] == [
        25_000,
        30_000,
    ]
    move_deadline(app, campaign_id, utcnow() - timedelta(seconds=1))
    late = pat.post(url, json={"amount": 1000})
    assert late.status_code == 409 and late.json["error"]["code"] == "closed"
    assert pat.post("/api/funding/campaigns/999/pledges", json={"amount": 1}).status_code == 404


def test_interest_is_a_put_and_delete_toggle(app, login_as):
    boss = login_as("boss@webpush-server.dev", "admin")
    pat = login_as("pat@webpush-server.dev")
    campaign_id = add_campaign(boss)
    url = f"/api/funding/campaigns/{campaign_id}/interest"
    assert pat.put(url).status_code == 204
    assert pat.put(url).status_code == 204
    assert pat.get(f"/api/funding/campaigns/{campaign_id}").json["following"] is True
    with app.app_context():
        assert len(db.session.scalars(select(Follow)).all()) == 1
    assert pat.delete(url).status_code == 204
    assert pat.delete(url).status_code == 204
    assert pat.get(f"/api/funding/campaigns/{campaign_id}").json["following"] is False
    assert Api(app.test_client()).put(url).status_code == 401


def _succeeded_campaign(app, boss: Api, backers: list[Api], valid_days: int = 30) -> int:
    campaign_id = add_campaign(boss, goal_amount=10_000, coupon_valid_days=valid_days)
    for backer in backers:
        backer.post(f"/api/funding/campaigns/{campaign_id}/pledges", json={"amount": 10_000})
    move_deadline(app, campaign_id, utcnow() - timedelta(seconds=1))
    with app.app_context():
        assert close_campaign(campaign_id) == "succeeded"
    return campaign_id


def test_coupons_are_visible_and_redeemable_by_their_owner_only(app, login_as):
    boss = login_as("boss@webpush-server.dev", "admin")
    pat = login_as("pat@webpush-server.dev")
    eve = login_as("eve@webpush-server.dev")
    campaign_id = _succeeded_campaign(app, boss, [pat])
    (coupon,) = pat.get("/api/funding/coupons").json["coupons"]
    assert coupon["campaign_id"] == campaign_id and coupon["status"] == "active"
    assert re.fullmatch(r"[A-Z2-9]{4}(-[A-Z2-9]{4}){3}", coupon["code"])
    assert eve.get("/api/funding/coupons").json["coupons"] == []
    assert coupon["code"] not in eve.get("/funding/coupons").text
    stolen = eve.post(f"/api/funding/coupons/{coupon['code']}/redeem")
    assert stolen.status_code == 404
    assert eve.post(f"/funding/coupons/{coupon['code']}/redeem").status_code == 404
    redeemed = pat.post(f"/api/funding/coupons/{coupon['code']}/redeem")
    assert redeemed.status_code == 200 and redeemed.json["status"] == "used"
    again = pat.post(f"/api/funding/coupons/{coupon['code']}/redeem")
    assert again.status_code == 409 and again.json["error"]["code"] == "used"


def test_coupon_expiry_date_is_the_last_valid_day_in_app_timezone(make_app, login_as):
    app = make_app(APP_TIMEZONE="America/Los_Angeles")
    boss = login_as("boss@webpush-server.dev", "admin", app=app)
    pat = login_as("pat@webpush-server.dev", app=app)
    _succeeded_campaign(app, boss, [pat], valid_days=1)
    with app.app_context():
        coupon = db.session.scalars(select(Coupon)).one()
        # Valid through the whole local day after closing: it ends at local midnight.
        local_end = coupon.expires_at.astimezone(
            __import__("zoneinfo").ZoneInfo("America/Los_Angeles")
        )
        assert (local_end.hour, local_end.minute) == (0, 0)
        expected = (local_end - timedelta(days=1)).date().isoformat()
    (row,) = pat.get("/api/funding/coupons").json["coupons"]
    assert row["expires_on"] == expected
    page = pat.get("/funding/coupons").text
    # One formatter for every date: the last valid day, in words, as a <time> of that date.
    assert f'<span class="expires-on"><time datetime="{expected}" data-style="date"' in page
    assert "America/Los_Angeles" in page
    # Past its instant a coupon is expired at once, before the expire-coupons job runs.
    with app.app_context():
        db.session.execute(update(Coupon).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert pat.get("/api/funding/coupons").json["coupons"][0]["status"] == "expired"
    gone = pat.post(f"/api/funding/coupons/{row['code']}/redeem")
    assert gone.status_code == 409 and gone.json["error"]["code"] == "expired"


def test_pages_list_pledge_follow_and_show_my_pledges(login_as, client):
    boss = login_as("boss@webpush-server.dev", "admin")
    pat = login_as("pat@webpush-server.dev")
    campaign_id = add_campaign(boss, title="Bee garden", goal_amount=200_000)
    listing = client.get("/funding/")
    assert listing.status_code == 200
    assert "Bee garden" in listing.text and 'class="progress"' in listing.text
    assert re.search(r"\d+ (days|hours) left", listing.text)
    page = pat.get(f"/funding/campaigns/{campaign_id}")
    assert 'name="amount"' in page.text and "☆ Follow" in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    pledged = pat.client.post(
        f"/funding/campaigns/{campaign_id}/pledge", data={"amount": "50000", "csrf_token": token}
    )
    assert pledged.status_code == 302
    followed = pat.client.post(
        f"/funding/campaigns/{campaign_id}/follow", data={"follow": "1", "csrf_token": token}
    )
    assert followed.status_code == 302
    page = pat.get(f"/funding/campaigns/{campaign_id}").text
    assert "★ Following" in page and "₩50,000" in page and "25%" in page
    assert 'style="width: 25%"' in page
    forged = pat.client.post(f"/funding/campaigns/{campaign_id}/pledge", data={"amount": "1"})
    assert forged.status_code == 400
    mine = pat.get("/funding/pledges").text
    assert "Bee garden" in mine and "₩50,000" in mine
    assert client.get("/funding/pledges").status_code == 302  # to the login page


def test_admin_pages_create_and_edit_in_app_timezone(app, login_as):
    boss = login_as("boss@webpush-server.dev", "admin")
    form = boss.get("/funding/admin/campaigns/new")
    assert form.status_code == 200 and "Asia/Seoul" in form.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    fields = {
        "csrf_token": token,
        "title": "Kimchi fridge",
        "description": "Shared.",
        "goal_amount": "800000",
        "deadline": "2099-03-01T18:30",
        "coupon_discount": "10",
        "coupon_valid_days": "14",
    }
    created = boss.client.post("/funding/admin/campaigns/new", data=fields)
    assert created.status_code == 302
    campaign_id = int(created.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        # 18:30 in Seoul (UTC+9) is stored as 09:30 UTC.
        assert campaign.deadline.isoformat() == "2099-03-01T09:30:00+00:00"
    edit = boss.get(f"/funding/admin/campaigns/{campaign_id}/edit").text
    assert 'value="2099-03-01T18:30"' in edit
    bad = boss.client.post(
        f"/funding/admin/campaigns/{campaign_id}/edit", data=fields | {"goal_amount": "-1"}
    )
    assert bad.status_code == 400 and "Goal (won) must be a whole number" in bad.text
    saved = boss.client.post(
        f"/funding/admin/campaigns/{campaign_id}/edit", data=fields | {"title": "Big fridge"}
    )
    assert saved.status_code == 302
    assert "Big fridge" in boss.get(f"/funding/campaigns/{campaign_id}").text


def test_closed_campaigns_cannot_be_edited(app, login_as):
    boss = login_as("boss@webpush-server.dev", "admin")
    campaign_id = add_campaign(boss)
    move_deadline(app, campaign_id, utcnow() - timedelta(seconds=1))
    with app.app_context():
        assert close_campaign(campaign_id) == "failed"
    response = boss.put(f"/api/funding/campaigns/{campaign_id}", json=campaign_json())
    assert response.status_code == 409

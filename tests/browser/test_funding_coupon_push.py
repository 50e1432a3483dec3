"""A backer with push on in Firefox is shown the coupon notification when the campaign closes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.factories import move_deadline
from tests.helpers import enable_push, log_in_firefox
from webpush_server.extensions import db
from webpush_server.funding.models import Coupon
from webpush_server.funding.services import create_campaign, parse_campaign
from webpush_server.timeutil import utcnow

pytestmark = pytest.mark.browser


def test_backer_gets_the_coupon_notification_in_firefox(
    firefox, app, live_server, live_worker, push_service, make_user, tmp_path
):
    admin_id = make_user("boss@webpush-server.dev", role="admin")
    make_user("backer@webpush-server.dev", name="Bo")
    with app.app_context():
        fields = parse_campaign(
            {
                "title": "Bee garden",
                "goal_amount": 50_000,
                "deadline": (utcnow() + timedelta(days=2)).isoformat(),
                "coupon_discount": 20,
                "coupon_valid_days": 30,
            }
        )
        campaign_id = create_campaign(fields, admin_id)

    log_in_firefox(firefox, live_server, "backer@webpush-server.dev")
    # Turn push on from the notifications page: Firefox subscribes, the page stores the device.
    endpoint = enable_push(firefox, live_server)

    # Pledge the whole goal through the campaign page's form.
    firefox.navigate(f"{live_server}/funding/campaigns/{campaign_id}")
    firefox.type("#amount", "50000")
    firefox.click(".pledge-form button[type=submit]")
    firefox.wait_until("document.body.textContent.includes('your pledge is recorded')")
    firefox.screenshot(tmp_path / "campaign.png")
    # Leave the site: the notification must come by Web Push, not through an open tab.
    firefox.navigate("about:blank")

    move_deadline(app, campaign_id, utcnow() - timedelta(seconds=1))
    result = app.test_cli_runner().invoke(args=["jobs", "run", "close-due-campaigns"])
    assert "'succeeded': 1" in result.output, result.output
    push_service.wait_for(lambda pushes: any(p.endpoint == endpoint for p in pushes), timeout=30)

    firefox.navigate(f"{live_server}/funding/coupons")
    shown = firefox.wait_for_notification("Bee garden met its goal", timeout=30)
    with app.app_context():
        code = db.session.scalar(select(Coupon.code))
    assert code in shown["body"] and "20% off" in shown["body"]
    assert shown["data"]["url"] == f"{live_server}/n/{shown['data']['id']}"
    assert code in firefox.text(".coupon-list")
    firefox.screenshot(tmp_path / "coupons.png")

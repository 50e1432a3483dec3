"""Who is told what about campaigns and coupons (the funding rows of the recipients table)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import select

from ..extensions import db
from ..notifications.record import Notice, Recipients
from ..timeutil import app_zone, local_time, money, utcnow
from .events import CampaignDeadlineNeared, CampaignFailed, CampaignSucceeded, CouponsExpiring
from .models import Campaign, Coupon
from .timeutil import expires_on


def campaign_succeeded(event: CampaignSucceeded) -> Iterator[Notice]:
    """Each backer: the campaign met its goal and here is your coupon."""
    campaign = db.session.get_one(Campaign, event.campaign_id)
    coupons = db.session.execute(
        select(Coupon.user_id, Coupon.code, Coupon.expires_at).where(
            Coupon.campaign_id == event.campaign_id, Coupon.user_id.in_(event.backer_ids)
        )
    ).all()
    zone = app_zone()
    for user_id, code, expires_at in coupons:
        yield Notice(
            user_id=user_id,
            kind="campaign_succeeded",
            title=f"{campaign.title} met its goal",
            body=(
                f"Your coupon {code} gives {campaign.coupon_discount}% off, "
                f"valid through {expires_on(expires_at, zone).isoformat()}."
            ),
            url="/funding/coupons",
            dedupe_key=f"campaign-succeeded:{campaign.id}:{user_id}",
        )


def campaign_failed(event: CampaignFailed) -> Iterator[Notice]:
    """Each backer: the campaign missed its goal."""
    campaign = db.session.get_one(Campaign, event.campaign_id)
    for user_id in event.backer_ids:
        yield Notice(
            user_id=user_id,
            kind="campaign_failed",
            title=f"{campaign.title} missed its goal",
            body=f"It needed {money(campaign.goal_amount)} by its deadline; no coupon this time.",
            url=f"/funding/campaigns/{campaign.id}",
            dedupe_key=f"campaign-failed:{campaign.id}:{user_id}",
        )


def campaign_deadline_soon(event: CampaignDeadlineNeared) -> Iterator[Notice]:
    """Each follower who has not backed: the deadline is within a day."""
    campaign = db.session.get_one(Campaign, event.campaign_id)
    when = local_time(campaign.deadline)
    for user_id in event.follower_ids:
        yield Notice(
            user_id=user_id,
            kind="campaign_deadline_soon",
            title=f"{campaign.title} closes soon",
            body=f"Its deadline is {when}. Back it before then.",
            url=f"/funding/campaigns/{campaign.id}",
            dedupe_key=f"campaign-deadline-soon:{campaign.id}:{user_id}",
            topic=f"campaign-{campaign.id}",
            # Worthless after the deadline: the push service may drop it then.
            expires_at=campaign.deadline,
        )


def coupon_expiring(event: CouponsExpiring) -> Iterator[Notice]:
    """Each coupon's owner: it expires within the next day."""
    rows = db.session.execute(
        select(Coupon.id, Coupon.user_id, Coupon.code, Coupon.expires_at, Campaign.title)
        .join(Campaign, Campaign.id == Coupon.campaign_id)
        .where(Coupon.id.in_(event.coupon_ids))
    ).all()
    zone, day = app_zone(), utcnow() + timedelta(days=1)
    for coupon_id, user_id, code, expires_at, title in rows:
        last_day = expires_on(expires_at, zone).isoformat()
        yield Notice(
            user_id=user_id,
            kind="coupon_expiring",
            title=f"{title} coupon expires on {last_day}",
            body=f"Use {code} before it expires.",
            url="/funding/coupons",
            dedupe_key=f"coupon-expiring:{coupon_id}:{last_day}",
            topic=f"coupon-{coupon_id}",
            expires_at=min(expires_at, day),
        )


# Who is told what about campaigns and coupons: registered by funding.init_app.
RECIPIENTS: Recipients = {
    CampaignSucceeded: campaign_succeeded,
    CampaignFailed: campaign_failed,
    CampaignDeadlineNeared: campaign_deadline_soon,
    CouponsExpiring: coupon_expiring,
}

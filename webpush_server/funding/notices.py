"""Who is told what about campaigns and coupons (the funding rows of the recipients table)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import func, select

from ..extensions import db
from ..notifications.record import Notice, Recipients
from ..timeutil import app_zone, local_time, money, utcnow
from .events import (
    CampaignClosed,
    CampaignDeadlineNeared,
    CampaignFailed,
    CampaignSucceeded,
    CouponsExpiring,
)
from .models import Campaign, Coupon, Pledge
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
    """Each backer: the campaign missed its goal, and nothing of their pledge is charged."""
    campaign = db.session.get_one(Campaign, event.campaign_id)
    pledged: dict[int, int] = {
        user_id: int(total)
        for user_id, total in db.session.execute(
            select(Pledge.user_id, func.sum(Pledge.amount))
            .where(Pledge.campaign_id == campaign.id, Pledge.user_id.in_(event.backer_ids))
            .group_by(Pledge.user_id)
        )
    }
    for user_id in event.backer_ids:
        yield Notice(
            user_id=user_id,
            kind="campaign_failed",
            title=f"{campaign.title} missed its goal",
            body=(
                f"It needed {money(campaign.goal_amount)} by its deadline. Nothing is charged: "
                f"your pledge of {money(pledged.get(user_id, 0))} is cancelled."
            ),
            url=f"/funding/campaigns/{campaign.id}",
            dedupe_key=f"campaign-failed:{campaign.id}:{user_id}",
        )


def campaign_deadline_soon(event: CampaignDeadlineNeared) -> Iterator[Notice]:
    """Each follower who has not backed: the deadline is within two days, or within one."""
    campaign = db.session.get_one(Campaign, event.campaign_id)
    when = local_time(campaign.deadline, zone_name=True)
    within = "a day" if event.hours <= 24 else f"{event.hours // 24} days"
    # The 24 h reminder keeps the key it had before the 48 h one existed: a follower told
    # under the old code is not told again.
    suffix = "" if event.hours == 24 else f":{event.hours}h"
    for user_id in event.follower_ids:
        yield Notice(
            user_id=user_id,
            kind="campaign_deadline_soon",
            title=f"{campaign.title} closes within {within}",
            body=f"Its deadline is {when}. Back it before then.",
            url=f"/funding/campaigns/{campaign.id}",
            dedupe_key=f"campaign-deadline-soon:{campaign.id}:{user_id}{suffix}",
            # One topic for both reminders: the 24 h one replaces an undelivered 48 h one.
            topic=f"campaign-{campaign.id}",
            # Worthless after the deadline: the push service may drop it then.
            expires_at=campaign.deadline,
        )


def campaign_closed(event: CampaignClosed) -> Iterator[Notice]:
    """The campaign's creator: it closed, with what it raised, from how many, and coupons."""
    campaign = db.session.get_one(Campaign, event.campaign_id)
    if campaign.created_by is None:  # the creator's account is gone
        return
    pledged, backers = db.session.execute(
        select(
            func.coalesce(func.sum(Pledge.amount), 0), func.count(func.distinct(Pledge.user_id))
        ).where(Pledge.campaign_id == campaign.id)
    ).one()
    people = f"{backers} backer{'' if backers == 1 else 's'}"
    if campaign.status == "succeeded":
        coupons = db.session.scalar(
            select(func.count()).select_from(Coupon).where(Coupon.campaign_id == campaign.id)
        )
        outcome = f"{campaign.title} succeeded"
        after = f"{coupons} coupon{'' if coupons == 1 else 's'} issued."
    else:
        outcome = f"{campaign.title} failed"
        after = "Nothing is charged; no coupons."
    yield Notice(
        user_id=campaign.created_by,
        kind="campaign_closed",
        title=f"{outcome}: {money(int(pledged))} of {money(campaign.goal_amount)}",
        body=f"Raised {money(int(pledged))} of {money(campaign.goal_amount)} from {people}. "
        + after,
        url=f"/funding/campaigns/{campaign.id}",
        dedupe_key=f"campaign-closed:{campaign.id}",
        topic=f"campaign-{campaign.id}",
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
    CampaignClosed: campaign_closed,
    CouponsExpiring: coupon_expiring,
}

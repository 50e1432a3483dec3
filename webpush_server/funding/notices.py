"""Who is told what about campaigns and coupons (the funding rows of the recipients table)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import func, select

from ..extensions import db
from ..notifications.record import Notice, Recipients
from ..notifications.text import N_, Later
from ..timeutil import app_zone, display_zone, local_time, money, utcnow
from .events import (
    CampaignClosed,
    CampaignDeadlineNeared,
    CampaignFailed,
    CampaignSucceeded,
    CouponsExpiring,
)
from .models import Campaign, Coupon, Pledge
from .timeutil import expires_on


def last_day(expires_at: datetime) -> str:
    """Show the last valid day of a coupon on the recipient's calendar (their zone)."""
    return local_time(expires_on(expires_at, display_zone()))


def campaign_succeeded(event: CampaignSucceeded) -> Iterator[Notice]:
    """Each backer: the campaign met its goal and here is your coupon."""
    campaign = db.session.get_one(Campaign, event.campaign_id)
    coupons = db.session.execute(
        select(Coupon.user_id, Coupon.code, Coupon.expires_at).where(
            Coupon.campaign_id == event.campaign_id, Coupon.user_id.in_(event.backer_ids)
        )
    ).all()
    title = N_("%(title)s met its goal", title=campaign.title)
    for user_id, code, expires_at in coupons:
        yield Notice(
            user_id=user_id,
            kind="campaign_succeeded",
            title=title,
            body=N_(
                "Your coupon %(code)s gives %(discount)s%% off, valid through %(last_day)s.",
                code=code,
                discount=campaign.coupon_discount,
                last_day=Later.of(last_day, expires_at),
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
    title = N_("%(title)s missed its goal", title=campaign.title)
    goal = Later.of(money, campaign.goal_amount)
    for user_id in event.backer_ids:
        yield Notice(
            user_id=user_id,
            kind="campaign_failed",
            title=title,
            body=N_(
                "It needed %(goal)s by its deadline. Nothing is charged: "
                "your pledge of %(pledged)s is cancelled.",
                goal=goal,
                pledged=Later.of(money, pledged.get(user_id, 0)),
            ),
            url=f"/funding/campaigns/{campaign.id}",
            dedupe_key=f"campaign-failed:{campaign.id}:{user_id}",
        )


def campaign_deadline_soon(event: CampaignDeadlineNeared) -> Iterator[Notice]:
    """Each follower who has not backed: the deadline is within two days, or within one."""
    campaign = db.session.get_one(Campaign, event.campaign_id)
    # One Text for every follower: it renders once per language and zone.
    if event.hours <= 24:
        title = N_("%(title)s closes within a day", title=campaign.title)
    else:
        title = N_(
            "%(title)s closes within %(days)d days", title=campaign.title, days=event.hours // 24
        )
    body = N_(
        "Its deadline is %(when)s. Back it before then.",
        when=Later.of(local_time, campaign.deadline, zone_name=True),
    )
    # The 24 h reminder keeps the key it had before the 48 h one existed: a follower told
    # under the old code is not told again.
    suffix = "" if event.hours == 24 else f":{event.hours}h"
    for user_id in event.follower_ids:
        yield Notice(
            user_id=user_id,
            kind="campaign_deadline_soon",
            title=title,
            body=body,
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
    raised, goal = Later.of(money, int(pledged)), Later.of(money, campaign.goal_amount)
    totals = {"title": campaign.title, "raised": raised, "goal": goal}
    if campaign.status == "succeeded":
        coupons = db.session.scalar(
            select(func.count()).select_from(Coupon).where(Coupon.campaign_id == campaign.id)
        )
        title = N_("%(title)s succeeded: %(raised)s of %(goal)s", **totals)
        after = (
            N_("1 coupon issued.") if coupons == 1 else N_("%(n)d coupons issued.", n=coupons or 0)
        )
    else:
        title = N_("%(title)s failed: %(raised)s of %(goal)s", **totals)
        after = N_("Nothing is charged; no coupons.")
    if backers == 1:
        body = N_("Raised %(raised)s of %(goal)s from 1 backer. %(after)s", **totals, after=after)
    else:
        body = N_(
            "Raised %(raised)s of %(goal)s from %(backers)d backers. %(after)s",
            **totals,
            backers=backers,
            after=after,
        )
    yield Notice(
        user_id=campaign.created_by,
        kind="campaign_closed",
        title=title,
        body=body,
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
        day_key = expires_on(expires_at, zone).isoformat()
        yield Notice(
            user_id=user_id,
            kind="coupon_expiring",
            title=N_(
                "%(title)s coupon expires on %(last_day)s",
                title=title,
                last_day=Later.of(last_day, expires_at),
            ),
            body=N_("Use %(code)s before it expires.", code=code),
            url="/funding/coupons",
            dedupe_key=f"coupon-expiring:{coupon_id}:{day_key}",
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

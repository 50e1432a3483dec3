"""Demo campaigns in every state, with backers, followers and coupons."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from ..auth.models import User
from ..auth.services import create_user, find_user
from ..extensions import db
from ..timeutil import utcnow
from .models import Campaign, Coupon, Follow, Pledge
from .services import new_code
from .timeutil import local_date, start_of_day

BACKERS = (
    ("backer1@demo.webpush-server.dev", "Bo Backer"),
    ("backer2@demo.webpush-server.dev", "Min Funder"),
)


def seed_funding(password: str) -> list[str]:
    """Create the demo campaigns once; return the titles created."""
    if db.session.scalar(select(Campaign.id).limit(1)) is not None:
        return []
    patron = find_user("patron@demo.webpush-server.dev")
    users = [patron] if patron else []
    for email, name in BACKERS:
        users.append(find_user(email) or create_user(email, password, "patron", name))
    admin = find_user("admin@demo.webpush-server.dev")
    now = utcnow()
    today = local_date(now)
    plans = [
        # title, goal, deadline, status, pledges per user, discount, valid days
        ("Solar lanterns for Jeju trails", 3_000_000, now + timedelta(days=12), "open",
         (400_000, 250_000, 600_000), 15, 30),
        ("Community kimchi fridge", 800_000, now + timedelta(hours=20), "open",
         (0, 120_000, 200_000), 10, 14),
        ("Board-game café library", 1_500_000, now - timedelta(days=20), "succeeded",
         (700_000, 500_000, 450_000), 20, 21),
        ("Rooftop bee garden", 2_000_000, now - timedelta(days=3), "succeeded",
         (900_000, 800_000, 600_000), 25, 60),
        ("Retro arcade revival", 5_000_000, now - timedelta(days=2), "failed",
         (300_000, 0, 150_000), 10, 30),
    ]  # fmt: skip
    titles = []
    for title, goal, deadline, status, amounts, discount, days in plans:
        campaign = Campaign(
            title=title,
            description=f"{title}: a demo campaign.",
            goal_amount=goal,
            deadline=deadline,
            status=status,
            coupon_discount=discount,
            coupon_valid_days=days,
            created_by=admin.id if admin else None,
            closed_at=deadline if status != "open" else None,
            notified_at=deadline if status != "open" else None,
        )
        db.session.add(campaign)
        db.session.flush()
        _back(campaign, users, amounts, today, now)
        titles.append(title)
    db.session.commit()
    return titles


def _back(campaign: Campaign, users: list[User], amounts: tuple[int, ...], today, now) -> None:
    # Pledges are history: made before the deadline and before now (an open campaign's
    # deadline is still ahead), a few hours apart.
    pledged_by = min(campaign.deadline, now) - timedelta(days=1)
    for index, (user, amount) in enumerate(zip(users, amounts, strict=True)):
        if not amount:
            db.session.add(Follow(campaign_id=campaign.id, user_id=user.id))
            continue
        db.session.add(
            Pledge(
                campaign_id=campaign.id,
                user_id=user.id,
                amount=amount,
                created_at=pledged_by - timedelta(hours=3 * index),
            )
        )
        if campaign.status != "succeeded":
            continue
        # The board-game café coupons end tomorrow: the 09:00 run reminds their owners.
        ends = 1 if campaign.title.startswith("Board") else 40
        status = "used" if index == 2 and ends == 40 else "active"
        db.session.add(
            Coupon(
                code=new_code(),
                campaign_id=campaign.id,
                user_id=user.id,
                status=status,
                discount=campaign.coupon_discount,
                expires_at=start_of_day(today + timedelta(days=ends + 1)),
            )
        )

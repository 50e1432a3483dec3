"""Funding test data: campaigns through the API, bulk rows for the batch-job tests."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update

from tests.pushservice import PushService
from webpush_server.auth.models import User
from webpush_server.extensions import db
from webpush_server.funding.models import Campaign, Coupon
from webpush_server.funding.services import new_code
from webpush_server.notifications.models import Delivery, Notification
from webpush_server.push.models import Subscription
from webpush_server.timeutil import utcnow


def campaign_json(**overrides) -> dict:
    """A valid POST /api/funding/campaigns body."""
    body = {
        "title": "Solar lanterns",
        "description": "Light for the trails.",
        "goal_amount": 100_000,
        "deadline": (utcnow() + timedelta(days=3)).isoformat(),
        "coupon_discount": 15,
        "coupon_valid_days": 30,
    }
    return body | overrides


def move_deadline(app, campaign_id: int, deadline: datetime) -> None:
    """Move a campaign's deadline, as time passing would."""
    with app.app_context():
        db.session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(deadline=deadline)
        )
        db.session.commit()


def subscribe(api, push_service: PushService):
    """Subscribe one device of the logged-in user through the API; return it."""
    device = push_service.new_subscription()
    response = api.post("/api/push/subscriptions", json=device.as_json())
    assert response.status_code == 201, response.text
    return device


def notifications(app, kind: str | None = None) -> list[Notification]:
    """Every notification row (of kind), oldest first."""
    with app.app_context():
        query = select(Notification).order_by(Notification.id)
        if kind:
            query = query.where(Notification.kind == kind)
        rows = db.session.scalars(query).all()
        db.session.expunge_all()
        return rows


def count(app, model, *where) -> int:
    """Count rows of model matching where."""
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def bulk_users(app, prefix: str, n: int, push_service: PushService | None = None) -> list[int]:
    """Insert n users fast (no password hashing); give each a device when push_service."""
    with app.app_context():
        now = utcnow()
        rows = [
            {
                "email": f"{prefix}{i}@bulk.webpush-server.dev",
                "name": f"{prefix}{i}",
                "password_hash": "x",
                "role": "patron",
                "created_at": now,
            }
            for i in range(n)
        ]
        db.session.execute(insert(User.__table__), rows)
        ids = list(
            db.session.scalars(
                select(User.id).where(User.email.like(f"{prefix}%@bulk.webpush-server.dev"))
            )
        )
        if push_service is not None:
            device = push_service.new_subscription()
            db.session.execute(
                insert(Subscription.__table__),
                [
                    {
                        "user_id": user_id,
                        "endpoint": f"{device.endpoint}-{user_id}",
                        "p256dh": device.p256dh,
                        "auth": device.auth,
                        "user_agent": "",
                        "created_at": now,
                        "failure_count": 0,
                    }
                    for user_id in ids
                ],
            )
        db.session.commit()
        return ids


def bulk_campaign(app, title: str = "Bulk", goal: int = 1000, **values) -> int:
    """Insert one campaign directly; return its id."""
    with app.app_context():
        fields = {
            "title": title,
            "description": "",
            "goal_amount": goal,
            "deadline": utcnow() - timedelta(minutes=1),
            "status": "open",
            "coupon_discount": 10,
            "coupon_valid_days": 30,
            "created_at": utcnow(),
        } | values
        campaign_id = db.session.scalar(insert(Campaign).values(**fields).returning(Campaign.id))
        db.session.commit()
        return campaign_id


def bulk_coupons(app, campaign_id: int, user_ids: list[int], per_user: int, expires_at) -> None:
    """Insert per_user coupons for each user (one campaign each, so insert campaigns too)."""
    with app.app_context():
        now = utcnow()
        rows = []
        for k in range(per_user):
            # One coupon per (campaign, user): each round of coupons gets its own campaign.
            cid = campaign_id if k == 0 else _extra_campaign(campaign_id, k)
            rows.extend(
                {
                    "code": new_code(),
                    "campaign_id": cid,
                    "user_id": user_id,
                    "status": "active",
                    "discount": 10,
                    "expires_at": expires_at,
                    "created_at": now,
                }
                for user_id in user_ids
            )
        for start in range(0, len(rows), 5000):
            db.session.execute(insert(Coupon.__table__), rows[start : start + 5000])
        db.session.commit()


def _extra_campaign(campaign_id: int, k: int) -> int:
    base = db.session.get(Campaign, campaign_id)
    return db.session.scalar(
        insert(Campaign)
        .values(
            title=f"{base.title} {k}",
            description="",
            goal_amount=base.goal_amount,
            deadline=base.deadline,
            status="succeeded",
            coupon_discount=10,
            coupon_valid_days=30,
            created_at=utcnow(),
        )
        .returning(Campaign.id)
    )


def deliveries_count(app) -> int:
    """Count delivery rows."""
    return count(app, Delivery)

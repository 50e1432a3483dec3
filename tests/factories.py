"""Test data builders: users, devices at the local push service, books, campaigns, notifications.

Plain functions rather than factory-boy (not among the dev dependencies). Those taking an api
go through the HTTP API as a user would; the others write rows directly, fast, for the
batch-job tests.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import insert, select, update

from tests.helpers import PASSWORD
from tests.pushservice import PushService, TestSubscription
from webpush_server.auth.models import User
from webpush_server.extensions import db
from webpush_server.funding.models import Campaign, Coupon
from webpush_server.funding.services import new_code
from webpush_server.notifications.record import Notice, record_notices
from webpush_server.push.models import Subscription
from webpush_server.timeutil import utcnow


def make_vapid_pem() -> str:
    """Return a fresh P-256 private key as PKCS#8 PEM text."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# -- users -----------------------------------------------------------------------------------


def create_user(app, email: str, role: str = "patron", name: str | None = None) -> int:
    """Create an account with the test PASSWORD; return its id."""
    from webpush_server.auth.services import create_user as create

    with app.app_context():
        return create(email, PASSWORD, role, name).id


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


# -- devices ---------------------------------------------------------------------------------


def subscribe(api, push_service: PushService, count: int = 1) -> list[TestSubscription]:
    """Subscribe count new devices of the logged-in user through the API; return them."""
    devices = [push_service.new_subscription() for _ in range(count)]
    for device in devices:
        response = api.post("/api/push/subscriptions", json=device.as_json())
        assert response.status_code == 201, response.text
    return devices


def add_device(
    app, user_id: int, push_service: PushService, endpoint: str | None = None
) -> TestSubscription:
    """Store a device directly, as if it had been allowed when it subscribed; return its keys.

    The endpoint is the local push service's unless one is given (for endpoints the API would
    refuse today).
    """
    device = push_service.new_subscription()
    with app.app_context():
        db.session.add(
            Subscription(
                user_id=user_id,
                endpoint=endpoint or device.endpoint,
                p256dh=device.p256dh,
                auth=device.auth,
            )
        )
        db.session.commit()
    return device


# -- books -----------------------------------------------------------------------------------


def add_book(librarian, copies: int = 1, title: str = "Piranesi") -> tuple[int, list[int]]:
    """Add a book through the desk API; return its id and its copies' ids."""
    response = librarian.post(
        "/api/library/books",
        json={"title": title, "author": "Susanna Clarke", "isbn": None, "copies": copies},
    )
    assert response.status_code == 201, response.json
    return response.json["id"], response.json["copy_ids"]


# -- campaigns -------------------------------------------------------------------------------


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


def add_campaign(admin, **overrides) -> int:
    """Create a campaign through the API as an admin; return its id."""
    response = admin.post("/api/funding/campaigns", json=campaign_json(**overrides))
    assert response.status_code == 201, response.text
    return response.json["id"]


def move_deadline(app, campaign_id: int, deadline: datetime) -> None:
    """Move a campaign's deadline, as time passing would."""
    with app.app_context():
        db.session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(deadline=deadline)
        )
        db.session.commit()


def bulk_campaign(app, title: str = "Bulk", goal: int = 1000, **values) -> int:
    """Insert one campaign directly (past its deadline unless told); return its id."""
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


# -- notifications ---------------------------------------------------------------------------


def record_notification(
    app, user_id: int, kind: str = "book_available", title: str = "A book is ready"
) -> int:
    """Record one notification in this process (as a service would) and commit; return its id."""
    with app.app_context():
        (notification_id,) = record_notices(
            [
                Notice(
                    user_id=user_id,
                    kind=kind,
                    title=title,
                    body="Pick it up at the desk.",
                    url="/notifications",
                    dedupe_key=f"live-test:{uuid.uuid4().hex}",
                )
            ]
        )
        db.session.commit()
    return notification_id

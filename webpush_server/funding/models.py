"""Campaigns, pledges, follows and coupons. Money is whole won (integers), never floats."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime
from ..extensions import Model
from ..timeutil import utcnow

CAMPAIGN_STATUSES = ("open", "succeeded", "failed")
COUPON_STATUSES = ("active", "used", "expired")


class Campaign(Model):
    """A funding campaign: open until its deadline, then succeeded or failed, once."""

    __tablename__ = "campaign"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'succeeded', 'failed')", name="status"),
        CheckConstraint("goal_amount > 0", name="goal_positive"),
        CheckConstraint("coupon_discount BETWEEN 1 AND 100", name="discount_percent"),
        CheckConstraint("coupon_valid_days > 0", name="valid_days_positive"),
        # The close job's scan: open campaigns by deadline.
        Index("ix_campaign_status_deadline", "status", "deadline"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    goal_amount: Mapped[int] = mapped_column(BigInteger)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(10), default="open")
    # Percent off, 1-100, on the coupon every backer gets when the campaign succeeds.
    coupon_discount: Mapped[int] = mapped_column(Integer)
    coupon_valid_days: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set once every backer's notice is recorded: a job killed between closing and
    # notifying finds the campaign again by this column being NULL.
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Pledge(Model):
    """Money a user promised to a campaign; a user may pledge more than once."""

    __tablename__ = "pledge"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_pledge_campaign_id_user_id", "campaign_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Follow(Model):
    """A user's interest in a campaign: they hear about it before its deadline."""

    __tablename__ = "campaign_follow"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coupon(Model):
    """A backer's reward from a succeeded campaign, valid through the end of a local day."""

    __tablename__ = "coupon"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'used', 'expired')", name="status"),
        # One coupon per backer and campaign, whatever reruns happen.
        UniqueConstraint("campaign_id", "user_id", name="uq_coupon_campaign_user"),
        # The expiry jobs' keyset scans: by (expires_at, id).
        Index("ix_coupon_expires_at_id", "expires_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), default="active")
    discount: Mapped[int] = mapped_column(Integer)
    # The instant it stops being valid: midnight APP_TIMEZONE after its last valid day.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

"""The inbox and the outbox: notifications and their deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from ..database import UTCDateTime
from ..extensions import Model
from ..timeutil import utcnow
from .payload import notification_json

# dead: workers kept losing it (the sweeper took it back) until it ran out of attempts.
# cancelled: its sender withdrew it before it went out.
DELIVERY_STATUSES = (
    "pending",
    "sending",
    "sent",
    "failed",
    "gone",
    "expired",
    "skipped",
    "dead",
    "cancelled",
)
# The outbox carries every channel: push rows name a device, the others an address.
CHANNELS = ("push", "email", "sms")


class Notification(Model):
    """One message to one user: the inbox row, the source of truth."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str] = mapped_column(String(500), default="/notifications")
    tag: Mapped[str] = mapped_column(String(64))
    # Push options fixed when recorded: TTL is computed from expires_at at send time.
    urgency: Mapped[str] = mapped_column(String(10), default="normal")
    topic: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Receipts from the service worker (first of each kind) and from GET /n/<id> (clicked).
    shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When it enters the inbox: the time recorded, or later for a scheduled one. NULL: never
    # (withdrawn before it was due). Inbox queries and unread counts read only visible ones.
    visible_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The sender's own JSON object (the service API's `data`), carried to every channel.
    data: Mapped[dict | None] = mapped_column(JSON)

    def to_json(self) -> dict:
        """Return the inbox API shape."""
        return notification_json(
            id=self.id,
            kind=self.kind,
            title=self.title,
            body=self.body,
            url=self.url,
            tag=self.tag,
            created_at=self.created_at,
            read_at=self.read_at,
            data=self.data,
        )


class Delivery(Model):
    """One attempt target of a notification (the outbox row): a device, an address or a number."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("notification_id", "subscription_id", name="uq_delivery_target"),
        # One e-mail (or SMS) per notification and address; push rows leave address NULL.
        UniqueConstraint("notification_id", "channel", "address", name="uq_delivery_address"),
        CheckConstraint(
            "channel IN (" + ", ".join(f"'{channel}'" for channel in CHANNELS) + ")",
            name="channel",
        ),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in DELIVERY_STATUSES) + ")",
            name="status",
        ),
        # The sweeper's scan: pending or stale-sending rows by time.
        Index("ix_delivery_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Looked up through uq_delivery_target, whose first column it is: no index of its own.
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification.id", ondelete="CASCADE"))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("push_subscription.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(8), default="push", server_default="push")
    # The e-mail address or E.164 number of an email or sms row, as it was when recorded.
    address: Mapped[str | None] = mapped_column(String(320))
    # Routed `first`: sent only if no push delivery of its notification was sent by its time.
    fallback: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Times the sweeper took it back from a worker that never finished (claim timed out).
    reclaims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    tickle: Mapped[bool] = mapped_column(Boolean, default=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryAttempt(Model):
    """What happened on one try of a delivery: kept for diagnosis."""

    __tablename__ = "delivery_attempt"
    # The dashboard's windows (last hour, last day) scan attempts by time.
    __table_args__ = (Index("ix_delivery_attempt_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("delivery.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The push service (scheme://host[:port]) it went to: kept when the device is deleted.
    origin: Mapped[str | None] = mapped_column(String(300))
    # Request sent to response read; None when no response came (timeout, refused, expired).
    duration_ms: Mapped[float | None] = mapped_column(Float)


class ResolvedTag(Model):
    """A tag whose matter is settled (a hold picked up, a loan returned): devices close it.

    The service worker closes a tag's shown notifications older than resolved_at the next
    time it runs (GET /api/notifications/resolved), up to last_id: a newer notice about
    it (hold_cancelled) stays.
    """

    __tablename__ = "resolved_tag"
    __table_args__ = (
        UniqueConstraint("user_id", "tag", name="uq_resolved_tag_user_tag"),
        Index("ix_resolved_tag_user_resolved_at", "user_id", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(64))
    # The newest notification with that tag when it was settled: devices close it and older.
    last_id: Mapped[int] = mapped_column(Integer)
    resolved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

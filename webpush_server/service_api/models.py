"""API keys and the requests other services made with them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime
from ..extensions import Model
from ..timeutil import isoformat, utcnow

SITES = ("library", "funding", "all")
# queued: recorded, going out; scheduled: waiting for send_at; cancelled: withdrawn.
# "sent" is not stored: a queued request whose deliveries have all ended reads as sent.
REQUEST_STATUSES = ("queued", "scheduled", "cancelled")


class ApiKey(Model):
    """A service's credential: only the SHA-256 of the secret is kept."""

    __tablename__ = "api_key"
    __table_args__ = (CheckConstraint("site IN ('library', 'funding', 'all')", name="site"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    site: Mapped[str] = mapped_column(String(10), default="all")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the secret (wps_ and 8 more): enough to recognise it in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def to_json(self) -> dict:
        """Return the key as lists show it: never the secret."""
        return {
            "id": self.id,
            "name": self.name,
            "site": self.site,
            "prefix": self.prefix,
            "created_at": isoformat(self.created_at),
            "last_used_at": isoformat(self.last_used_at),
            "revoked_at": isoformat(self.revoked_at),
        }


class ApiRequest(Model):
    """One accepted POST /api/v1/notifications: its notifications point back here."""

    __tablename__ = "api_request"
    __table_args__ = (
        # The idempotency decision is this constraint's: two identical requests at the same
        # moment cannot both insert. NULLs (no Idempotency-Key) never clash.
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_api_request_idempotency"),
        CheckConstraint("status IN ('queued', 'scheduled', 'cancelled')", name="status"),
        Index("ix_api_request_cancellation", "api_key_id", "cancellation_key"),
        # The release job's scan: scheduled requests by due time.
        Index("ix_api_request_status_send_at", "status", "send_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_key.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    body_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancellation_key: Mapped[str | None] = mapped_column(String(200))
    # The first answer (JSON), given again to a replay with the same Idempotency-Key.
    response: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiRequestNotification(Model):
    """Which notifications a request recorded (a link table: notifications know no callers)."""

    __tablename__ = "api_request_notification"

    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notification.id", ondelete="CASCADE"), primary_key=True
    )
    api_request_id: Mapped[int] = mapped_column(
        ForeignKey("api_request.id", ondelete="CASCADE"), index=True
    )

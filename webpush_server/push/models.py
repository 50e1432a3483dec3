"""Push subscriptions: one row per browser (device) and user."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime
from ..extensions import Model
from ..timeutil import isoformat, utcnow

MAX_ENDPOINT_LENGTH = 2048


class Subscription(Model):
    __tablename__ = "push_subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    endpoint: Mapped[str] = mapped_column(String(MAX_ENDPOINT_LENGTH), unique=True)
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(40))
    expiration_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failure_count: Mapped[int] = mapped_column(Integer, default=0)

    def to_json(self) -> dict:
        """Return the API shape of this device."""
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "user_agent": self.user_agent,
            "created_at": isoformat(self.created_at),
            "last_success_at": isoformat(self.last_success_at),
            "last_failure_at": isoformat(self.last_failure_at),
        }

"""What each user chose: channels per kind, language, time zone, quiet hours; contact state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime
from ..extensions import Model


class Preference(Model):
    """One user's notification preferences; a user without a row has the defaults."""

    __tablename__ = "notification_preference"
    __table_args__ = (CheckConstraint("digest_hour BETWEEN 0 AND 23", name="digest_hour"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(16), default="en")
    # None: APP_TIMEZONE.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # "HH:MM" wall-clock times in timezone; both or neither.
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    digest_hour: Mapped[int] = mapped_column(Integer, default=8)
    # Only what differs from the kind's defaults: {"<kind>": {"email": false, ...}}.
    kinds: Mapped[dict] = mapped_column(JSON, default=dict)
    # Permanent SMTP refusals in a row; at 3 the address is bouncing and gets no more e-mail.
    email_bounces: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    email_bouncing_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # E.164; used only once verified (the code is kept hashed, with its tries).
    phone_number: Mapped[str | None] = mapped_column(String(16))
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    phone_invalid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    phone_code_hash: Mapped[str | None] = mapped_column(String(64))
    phone_code_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    phone_code_tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

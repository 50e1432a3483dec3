"""The audit log: who did what to what, when, from where."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from ..database import UTCDateTime
from ..extensions import Model
from ..timeutil import isoformat, utcnow


class AuditEvent(Model):
    """One staff or admin action; rows are only ever added."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    # The e-mail at the time (or "cli"): the record outlives the account and its renames.
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(64))

    def to_json(self) -> dict:
        """Return the API shape (docs/api.md, "Accounts and safety")."""
        return {
            "id": self.id,
            "at": isoformat(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "address": self.address,
        }

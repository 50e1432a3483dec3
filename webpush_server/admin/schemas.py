"""The audit API's shapes, for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class AuditQuery(BaseModel):
    limit: int | None = Field(None, ge=1, le=500, description="default 50")
    before: int | None = Field(None, ge=1, description="keyset cursor: ids below this")


class AuditEvent(BaseModel):
    """One staff or admin action."""

    id: int
    at: datetime
    actor: str = Field(description="the e-mail of who did it, or cli")
    action: str = Field(description="domain.verb, e.g. loan.checkout")
    target: str
    address: str | None = Field(description="the remote address")


class AuditEvents(BaseModel):
    events: list[AuditEvent]

"""The inbox API's shapes, for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class InboxQuery(BaseModel):
    unread: str | None = Field(None, description="1 or true: unread only")
    limit: int | None = Field(None, ge=1, le=200)
    before: int | None = Field(None, ge=1, description="keyset cursor: ids below this")


class InboxNotification(BaseModel):
    """One notification as the inbox, the live channel and push carry it."""

    id: int
    kind: str
    title: str
    body: str
    url: str
    tag: str
    created_at: datetime
    read_at: datetime | None
    data: dict[str, Any] | None = Field(None, description="the sender's data (service API)")


class Inbox(BaseModel):
    """The caller's notifications, newest first."""

    notifications: list[InboxNotification]
    unread_count: int


class MarkedRead(InboxNotification):
    """The notification, now read, and the caller's unread count."""

    unread_count: int


class MarkedAllRead(BaseModel):
    """How many were marked read."""

    marked: int
    unread_count: int


class TestSent(BaseModel):
    """The test notification's id, and how many devices it goes to by push (0: inbox only)."""

    notification_id: int
    devices: int


class CsrfToken(BaseModel):
    """A CSRF token for the service worker."""

    csrf_token: str


class StreamQuery(BaseModel):
    after: int | None = Field(None, ge=0, description="replay notifications after this id")


class ReceiptBody(BaseModel):
    """What the service worker saw happen to a notification it showed."""

    event: Literal["shown", "clicked", "closed"]


class ResolvedTagOut(BaseModel):
    tag: str
    last_id: int = Field(description="close shown notifications with this tag up to this id")
    resolved_at: str


class ResolvedTags(BaseModel):
    """Tags whose matter is settled (a hold picked up, a loan returned), newest first."""

    resolved: list[ResolvedTagOut]

"""The push API's shapes, for the OpenAPI document (push/services.py validates the input)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class VapidKey(BaseModel):
    """The applicationServerKey."""

    publicKey: str = Field(description="base64url of the 65-byte uncompressed P-256 point")


class SubscriptionKeys(BaseModel):
    p256dh: str
    auth: str


class SubscriptionIn(BaseModel):
    """PushSubscription.toJSON(), and the endpoint it replaces after pushsubscriptionchange."""

    endpoint: str = Field(max_length=2048)
    expirationTime: int | None = None
    keys: SubscriptionKeys
    oldEndpoint: str | None = None


class SubscriptionId(BaseModel):
    """The device's id (201 when new, 200 when the endpoint was known)."""

    id: int


class Device(BaseModel):
    id: int
    endpoint: str
    user_agent: str
    created_at: datetime
    last_success_at: datetime | None
    last_failure_at: datetime | None


class DeviceList(BaseModel):
    """The caller's devices and their health."""

    subscriptions: list[Device]


class EndpointIn(BaseModel):
    endpoint: str

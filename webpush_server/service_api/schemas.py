"""The service API's request and response shapes (pydantic): they validate and they document.

parse() turns a pydantic error into the one Invalid(field, message) the API answers with, the
field written as a dotted path (`recipients.3.email`). The same models feed GET
/api/openapi.json, so the document and the validation cannot disagree.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import MAX_ID, Invalid, safe_back

MAX_RECIPIENTS = 1000
MAX_DATA_BYTES = 2048
MAX_TTL_SECONDS = 30 * 86400  # Mozilla's cap
URGENCIES = ("very-low", "low", "normal", "high")

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """A request body: unknown fields are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class Recipient(Strict):
    """One recipient: a user id or an account's e-mail address."""

    user_id: Annotated[int, Field(strict=True, ge=1, le=MAX_ID)] | None = None
    email: Annotated[str, Field(min_length=3, max_length=254)] | None = None

    @model_validator(mode="after")
    def one_of(self) -> Recipient:
        if (self.user_id is None) == (self.email is None):
            raise ValueError("give exactly one of user_id and email")
        return self

    def as_json(self) -> dict:
        """Return the recipient as the caller wrote it."""
        return {"user_id": self.user_id} if self.user_id is not None else {"email": self.email}


def _iso_string(value: Any) -> Any:
    # pydantic would also take a number of seconds; the API promises ISO 8601 text.
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date and time with an offset")
    return value


class TriggerRequest(Strict):
    """POST /api/v1/notifications."""

    kind: Annotated[str, Field(min_length=1, max_length=40)]
    recipients: Annotated[list[Recipient], Field(min_length=1, max_length=MAX_RECIPIENTS)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[str, Field(max_length=2000)] = ""
    url: Annotated[str, Field(min_length=1, max_length=500)] = "/notifications"
    topic: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")] | None = None
    urgency: Literal["very-low", "low", "normal", "high"] | None = None
    ttl: Annotated[int, Field(strict=True, ge=1, le=MAX_TTL_SECONDS)] | None = None
    send_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    channels: Annotated[list[Literal["push", "email", "sms"]], Field(max_length=3)] | None = None
    cancellation_key: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    data: dict[str, Any] | None = None

    _iso = field_validator("send_at", "expires_at", mode="before")(_iso_string)

    @field_validator("title")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("url")
    @classmethod
    def our_path(cls, value: str) -> str:
        if safe_back(value, "") != value:
            raise ValueError("must be a path on this site: starting with / (not //), no spaces")
        return value

    @field_validator("channels")
    @classmethod
    def distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("must not name a channel twice")
        return value

    @field_validator("cancellation_key")
    @classmethod
    def printable(cls, value: str | None) -> str | None:
        if value is not None and not value.isprintable():
            raise ValueError("must be printable text")
        return value

    @field_validator("data")
    @classmethod
    def small(cls, value: dict | None) -> dict | None:
        if value is not None:
            size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
            if size > MAX_DATA_BYTES:
                raise ValueError(f"must be at most {MAX_DATA_BYTES} bytes as JSON, not {size}")
        return value


class CancelRequest(Strict):
    """POST /api/v1/notifications/cancel."""

    cancellation_key: Annotated[str, Field(min_length=1, max_length=200)]


class Skipped(BaseModel):
    """A recipient that got nothing (or not on one channel), and why."""

    recipient: dict[str, Any]
    reason: Literal["unknown_user", "duplicate", "channel_unavailable"]
    channel: Literal["email", "sms"] | None = None


class TriggerResponse(BaseModel):
    """202: the request is recorded."""

    id: int
    status: Literal["queued", "scheduled"]
    recipients: int = Field(description="notifications recorded")
    skipped: list[Skipped]


class ChannelCounts(BaseModel):
    """Deliveries of one channel by state (failed includes gone, expired and dead)."""

    pending: int
    sent: int
    failed: int
    skipped: int
    cancelled: int


class RecipientStatus(BaseModel):
    user_id: int
    notification_id: int
    read_at: datetime | None
    clicked_at: datetime | None = Field(
        description="when the user first clicked it (a service worker receipt or /n/<id>)"
    )
    channels: dict[Literal["push", "email", "sms"], ChannelCounts]


class StatusResponse(BaseModel):
    """GET /api/v1/notifications/<id>."""

    id: int
    status: Literal["queued", "scheduled", "sent", "cancelled"]
    created_at: datetime
    send_at: datetime | None
    recipients: list[RecipientStatus]


class CancelResponse(BaseModel):
    cancelled: int = Field(description="notifications whose unsent part was withdrawn")


def _field(loc: tuple) -> str | None:
    # Pydantic names the failing branch of a union or a validator ("function-after[...]");
    # the caller wants the path of their own input.
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in ("int", "str")))]
    return ".".join(parts) or None


def parse(model: type[M], raw: bytes) -> M:
    """Validate a JSON body against model; raise Invalid naming every field at fault.

    The error's field and message are the first one's (older clients read those); `fields`
    lists them all, so a form can mark every bad input at once.
    """
    try:
        return model.model_validate_json(raw or b"")
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors[0]["type"] == "json_invalid" or errors[0]["type"] == "model_type":
            raise Invalid(None, "Send a JSON object.") from None
        faults: list[dict[str, str | None]] = []
        for error in errors:
            field = _field(tuple(error["loc"]))
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "is not a field of this request"
            if all(fault["field"] != field for fault in faults):  # a union: once per field
                faults.append({"field": field, "message": f"{field or 'body'}: {message}"})
        first = faults[0]
        raise Invalid(first["field"], first["message"] or "", fields=faults) from None

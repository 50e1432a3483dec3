"""The shapes of /api/preferences for the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class QuietHours(BaseModel):
    """A nightly window (the user's wall clock) when push and SMS wait."""

    start: str = Field(pattern=r"^\d\d:\d\d$", examples=["22:00"])
    end: str = Field(pattern=r"^\d\d:\d\d$", examples=["08:00"])


class KindChoice(BaseModel):
    """One kind's channels and routing."""

    push: bool
    email: bool
    sms: bool
    digest: bool
    route: Literal["all", "first"]
    days_before: int | None = None


class EmailContact(BaseModel):
    address: str
    verified: bool
    bouncing: bool = False


class PhoneContact(BaseModel):
    number: str
    verified: bool


class Preferences(BaseModel):
    """The caller's notification preferences (defaults where they never chose)."""

    language: str
    timezone: str
    quiet_hours: QuietHours | None
    email: EmailContact
    phone: PhoneContact | None
    digest_hour: int
    kinds: dict[str, KindChoice]


class KindChoiceUpdate(BaseModel):
    push: bool | None = None
    email: bool | None = None
    sms: bool | None = None
    digest: bool | None = None
    route: Literal["all", "first"] | None = None
    days_before: int | None = None


class PreferencesUpdate(BaseModel):
    """Any part of the preferences, down to one field of one kind: merged into them."""

    language: Literal["en", "ko"] | None = None
    timezone: str | None = None
    quiet_hours: QuietHours | None = None
    digest_hour: int | None = Field(default=None, ge=0, le=23)
    kinds: dict[str, KindChoiceUpdate] | None = None


class PhoneIn(BaseModel):
    """A phone number, E.164 or national (PHONE_REGION)."""

    number: str = Field(examples=["+82 10-1234-5678"])


class CodeIn(BaseModel):
    """The 6-digit code texted to the number."""

    code: str = Field(pattern=r"^\d{6}$", examples=["123456"])

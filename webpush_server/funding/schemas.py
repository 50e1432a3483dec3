"""The funding API's shapes, for the OpenAPI document (services.py validates the input)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class Campaign(BaseModel):
    """A campaign with its totals."""

    id: int
    title: str
    description: str
    goal_amount: int
    pledged_amount: int
    backers: int
    deadline: datetime
    status: Literal["open", "succeeded", "failed"]
    coupon_discount: int
    coupon_valid_days: int
    following: bool | None = Field(None, description="logged in: whether the caller follows it")


class Campaigns(BaseModel):
    """Every campaign."""

    campaigns: list[Campaign]


class CampaignIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=10_000)
    goal_amount: int = Field(ge=1)
    deadline: datetime = Field(description="ISO 8601 with offset")
    coupon_discount: int = Field(ge=1, le=100)
    coupon_valid_days: int = Field(ge=1, le=3650)


class Created(BaseModel):
    """The new row's id."""

    id: int


class PledgeIn(BaseModel):
    amount: int = Field(ge=1, description="won")


class Pledge(BaseModel):
    id: int
    campaign_id: int
    campaign_title: str
    amount: int
    created_at: datetime
    campaign_status: str


class Pledges(BaseModel):
    """The caller's pledges."""

    pledges: list[Pledge]


class Coupon(BaseModel):
    """A coupon."""

    code: str
    campaign_id: int
    campaign_title: str
    discount: int
    status: Literal["active", "used", "expired"]
    expires_on: date


class Coupons(BaseModel):
    """The caller's coupons."""

    coupons: list[Coupon]

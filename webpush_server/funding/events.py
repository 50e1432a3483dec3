"""What happened in funding: past-tense events carrying ids only."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CampaignSucceeded:
    """The campaign met its goal; these backers got their coupons."""

    campaign_id: int
    backer_ids: tuple[int, ...]


@dataclass(frozen=True)
class CampaignFailed:
    """The campaign missed its goal; these backers are told."""

    campaign_id: int
    backer_ids: tuple[int, ...]


@dataclass(frozen=True)
class CampaignDeadlineNeared:
    """The campaign closes within `hours` (48 or 24); these followers have not backed it."""

    campaign_id: int
    follower_ids: tuple[int, ...]
    hours: int = 24


@dataclass(frozen=True)
class CampaignClosed:
    """The campaign closed at its deadline, succeeded or failed; its creator is told."""

    campaign_id: int


@dataclass(frozen=True)
class CouponsExpiring:
    """These active coupons reach their last valid day soon."""

    coupon_ids: tuple[int, ...]

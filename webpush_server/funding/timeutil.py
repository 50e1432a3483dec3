"""Funding's clock at the edges: local days in APP_TIMEZONE, stored as UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..timeutil import app_zone


def local_date(instant: datetime, zone: ZoneInfo | None = None) -> date:
    """Return the APP_TIMEZONE calendar date of a UTC instant."""
    return instant.astimezone(zone or app_zone()).date()


def start_of_day(day: date, zone: ZoneInfo | None = None) -> datetime:
    """Return the UTC instant at which day begins in APP_TIMEZONE."""
    return datetime.combine(day, time(0), tzinfo=zone or app_zone()).astimezone(UTC)


def coupon_expires_at(issued_at: datetime, valid_days: int) -> datetime:
    """Return when a coupon issued at issued_at stops being valid.

    It is valid through the whole local day issued + valid_days, so it expires at the
    following local midnight.
    """
    last_day = local_date(issued_at) + timedelta(days=valid_days)
    return start_of_day(last_day + timedelta(days=1))


def expires_on(expires_at: datetime, zone: ZoneInfo | None = None) -> date:
    """Return the last valid local day of something that expires at expires_at."""
    return local_date(expires_at - timedelta(microseconds=1), zone)

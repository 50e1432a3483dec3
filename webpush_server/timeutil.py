"""Time helpers: UTC inside, APP_TIMEZONE only at the edges."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Return value as aware UTC (SQLite hands back naive datetimes)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def isoformat(value: datetime | None) -> str | None:
    """Render a stored timestamp as ISO 8601 with an explicit UTC offset."""
    value = as_utc(value)
    return value.isoformat(timespec="seconds") if value else None


def app_zone() -> ZoneInfo:
    """Return APP_TIMEZONE: the wall clock of pages, daily jobs and displayed dates."""
    return ZoneInfo(current_app.config["APP_TIMEZONE"])

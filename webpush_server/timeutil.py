"""Time helpers: UTC inside, APP_TIMEZONE only at the edges."""

from datetime import UTC, date, datetime
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


# The ways a time is shown; every page, notice and form field formats through local_time().
TIME_FORMATS = {
    "datetime": "%Y-%m-%d %H:%M",
    "date": "%Y-%m-%d",
    "notice": "%a %d %b, %H:%M",
    "input": "%Y-%m-%dT%H:%M",  # <input type="datetime-local">
}


def local_time(
    value: datetime | date | None, style: str = "datetime", *, zone_name: bool = False
) -> str:
    """Show a stored UTC time on APP_TIMEZONE's wall clock, in one of TIME_FORMATS.

    Dates pass through as ISO dates; None shows as a dash. zone_name appends the zone.
    """
    if value is None:
        return "—"
    if not isinstance(value, datetime):
        return value.isoformat()
    zone = app_zone()
    text = value.astimezone(zone).strftime(TIME_FORMATS.get(style, style))
    return f"{text} {zone.key}" if zone_name else text


def money(amount: int) -> str:
    """Format whole won: ₩1,250,000."""
    return f"₩{amount:,}"

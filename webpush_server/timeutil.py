"""Time helpers: UTC inside, APP_TIMEZONE only at the edges."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from markupsafe import Markup, escape


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


# Set while text is rendered for someone other than the viewer (a notice's recipient).
_FORCED_ZONE: ContextVar[ZoneInfo | None] = ContextVar("forced_zone", default=None)


@contextmanager
def in_zone(zone: ZoneInfo) -> Iterator[None]:
    """Show times in zone inside the block (a notice rendered in its recipient's zone)."""
    token = _FORCED_ZONE.set(zone)
    try:
        yield
    finally:
        _FORCED_ZONE.reset(token)


def display_zone() -> ZoneInfo:
    """Return the zone times are shown in: the one place pages, notices and e-mails read it.

    The recipient's zone while a notice renders (in_zone); else APP_TIMEZONE for everyone
    until the preferences' time zone lands; then this reads the user's.
    """
    forced = _FORCED_ZONE.get()
    if forced is not None:
        return forced
    return app_zone()


def zone_label(local: datetime) -> str:
    """Name a local time's zone as people read it: KST, CET, UTC (never Asia/Seoul)."""
    name = local.tzname() or ""
    # Zones without an abbreviation (Asia/Dubai) give "+04": say it as an offset from UTC.
    return f"UTC{name}" if name[:1] in "+-" else name


# The ways a time is shown, and static/js/time.js mirrors them: every page, notice, toast and
# form field formats through local_time() (or its JS twin), so a time reads the same anywhere.
TIME_FORMATS = {
    "datetime": "%-d %b %Y, %H:%M",  # 4 Dec 2026, 03:04 KST
    "date": "%-d %b %Y",  # 4 Dec 2026
    "notice": "%a %-d %b, %H:%M",  # Fri 4 Dec, 03:04 KST (titles and bodies of notifications)
    "input": "%Y-%m-%dT%H:%M",  # <input type="datetime-local">, no zone
}
# The largest unit that fits, as Intl.RelativeTimeFormat words it (numeric: "auto"), in whole
# units; days are calendar days. No weeks: "in 2 weeks" beside "on 14 Dec" reads as vague.
_UNITS = (
    ("year", 31_536_000),
    ("month", 2_592_000),
    ("day", 86_400),
    ("hour", 3600),
    ("minute", 60),
)
_NEIGHBOURS = {
    "day": ("yesterday", "tomorrow"),
    "month": ("last month", "next month"),
    "year": ("last year", "next year"),
}


def local_time(
    value: datetime | date | None, style: str = "datetime", *, zone_name: bool | None = None
) -> str:
    """Show a stored UTC time in the display zone, in one of TIME_FORMATS, with its zone (KST).

    Dates show as dates (no zone); None shows as a dash. zone_name=False leaves the zone off.
    """
    if value is None:
        return "—"
    if not isinstance(value, datetime):
        return value.strftime(TIME_FORMATS["date"])
    local = value.astimezone(display_zone())
    text = local.strftime(TIME_FORMATS.get(style, style))
    show_zone = style not in ("input", "date") if zone_name is None else zone_name
    return f"{text} {zone_label(local)}" if show_zone else text


def relative_time(value: datetime | date | None, now: datetime | None = None) -> str:
    """Say how far value is from now, as people do: "in 2 days", "3 hours ago", "tomorrow"."""
    if value is None:
        return ""
    now = now or utcnow()
    if not isinstance(value, datetime):
        # A date (a due date) counts whole days on the display zone's calendar.
        days = (value - now.astimezone(display_zone()).date()).days
        return "today" if days == 0 else _relative(days * 86_400, "day")
    seconds = (value.astimezone(UTC) - now).total_seconds()
    if 86_400 <= abs(seconds) < 2_592_000:
        # Days count on the calendar: Friday 03:00 is "in 2 days" on Wednesday at 05:00, as the
        # date beside it says, though fewer than 48 hours are left.
        zone = display_zone()
        days = (value.astimezone(zone).date() - now.astimezone(zone).date()).days
        return _relative(days * 86_400, "day")
    for unit, size in _UNITS:
        if abs(seconds) >= size:
            return _relative(seconds, unit, size)
    return "just now"


def _relative(seconds: float, unit: str, size: int = 86_400) -> str:
    count = int(seconds / size)  # toward zero, like "days left"
    if abs(count) == 1 and unit in _NEIGHBOURS:
        return _NEIGHBOURS[unit][count > 0]
    words = f"{abs(count)} {unit}{'' if abs(count) == 1 else 's'}"
    return f"in {words}" if count > 0 else f"{words} ago"


def when(
    value: datetime | date | str | None, style: str = "datetime", *, relative: bool = False
) -> Markup:
    """Render a `<time>` element: the local time, and how far off it is where that helps.

    value may be an ISO 8601 string (as job executions hand them over). static/js/time.js
    re-renders the same elements in the browser, so "in 2 days" stays true on a page left open,
    and toasts and the inbox use the same words.
    """
    if isinstance(value, str):
        value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    if value is None:
        return Markup("—")
    text = local_time(value, style)
    stamp = isoformat(value) if isinstance(value, datetime) else value.isoformat()
    attrs = f'datetime="{escape(stamp)}" data-style="{escape(style)}"'
    if relative:
        attrs += " data-relative"
        text = f"{text} · {relative_time(value)}"
    return Markup(f"<time {attrs}>{escape(text)}</time>")


def money(amount: int) -> str:
    """Format whole won: ₩1,250,000."""
    return f"₩{amount:,}"

"""Time helpers: UTC inside, APP_TIMEZONE only at the edges."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from flask import current_app
from flask_babel import gettext, ngettext
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


# The ways a time is shown, per language, and static/js/time.js mirrors them: every page,
# notice, toast and form field formats through local_time() (or its JS twin), so a time reads
# the same anywhere. CLDR patterns (Babel): Korean puts the year first and says 오전/오후.
TIME_FORMATS = {
    "en": {
        "datetime": "d MMM y, HH:mm",  # 4 Dec 2026, 03:04 KST
        "date": "d MMM y",  # 4 Dec 2026
        "notice": "EEE d MMM, HH:mm",  # Fri 4 Dec, 03:04 KST (notification titles and bodies)
    },
    "ko": {
        "datetime": "y년 M월 d일 (E) a h:mm",  # 2026년 12월 4일 (금) 오전 3:04 KST
        "date": "y년 M월 d일",  # 2026년 12월 4일
        "notice": "M월 d일 (E) a h:mm",  # 12월 4일 (금) 오전 3:04 KST
    },
}
# <input type="datetime-local"> takes this in every language, with no zone.
INPUT_FORMAT = "%Y-%m-%dT%H:%M"
# The largest unit that fits, as Intl.RelativeTimeFormat words it (numeric: "auto"), in whole
# units; days are calendar days. No weeks: "in 2 weeks" beside "on 14 Dec" reads as vague.
_UNITS = (
    ("year", 31_536_000),
    ("month", 2_592_000),
    ("day", 86_400),
    ("hour", 3600),
    ("minute", 60),
)


def _language() -> str:
    from .i18n.locale import current_language

    return current_language()


def local_time(
    value: datetime | date | None, style: str = "datetime", *, zone_name: bool | None = None
) -> str:
    """Show a stored UTC time in the display zone, in one of TIME_FORMATS, with its zone (KST).

    Dates show as dates (no zone); None shows as a dash. zone_name=False leaves the zone off.
    The words and order are the current language's (flask_babel.force_locale for a recipient).
    """
    if value is None:
        return "—"
    language = _language()
    formats = TIME_FORMATS.get(language, TIME_FORMATS["en"])
    if not isinstance(value, datetime):
        return format_date(value, formats["date"], locale=language)
    local = value.astimezone(display_zone())
    if style == "input":
        text = local.strftime(INPUT_FORMAT)
    else:
        text = format_datetime(local, formats.get(style, formats["datetime"]), locale=language)
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
        return gettext("today") if days == 0 else _relative(days * 86_400, "day")
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
    return gettext("just now")


def _relative(seconds: float, unit: str, size: int = 86_400) -> str:
    count = int(seconds / size)  # toward zero, like "days left"
    # Each phrase is spelled out, so the catalog carries whole sentences (Korean: "2일 후").
    num = abs(count)
    if unit == "day":
        if count == 1:
            return gettext("tomorrow")
        if count == -1:
            return gettext("yesterday")
        if count > 0:
            return ngettext("in %(num)d day", "in %(num)d days", num)
        return ngettext("%(num)d day ago", "%(num)d days ago", num)
    if unit == "month":
        if count == 1:
            return gettext("next month")
        if count == -1:
            return gettext("last month")
        if count > 0:
            return ngettext("in %(num)d month", "in %(num)d months", num)
        return ngettext("%(num)d month ago", "%(num)d months ago", num)
    if unit == "year":
        if count == 1:
            return gettext("next year")
        if count == -1:
            return gettext("last year")
        if count > 0:
            return ngettext("in %(num)d year", "in %(num)d years", num)
        return ngettext("%(num)d year ago", "%(num)d years ago", num)
    if unit == "hour":
        if count > 0:
            return ngettext("in %(num)d hour", "in %(num)d hours", num)
        return ngettext("%(num)d hour ago", "%(num)d hours ago", num)
    if count > 0:
        return ngettext("in %(num)d minute", "in %(num)d minutes", num)
    return ngettext("%(num)d minute ago", "%(num)d minutes ago", num)


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
    """Format whole won in the current language: ₩1,250,000 (CLDR's KRW, no decimals)."""
    return format_currency(amount, "KRW", locale=_language())

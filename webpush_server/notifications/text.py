"""Notification text in the recipient's language: written now, rendered when it is recorded.

A domain's notices.py writes a title or body as ``N_("Your book is ready: %(title)s",
title=...)``: a msgid (extracted into the catalogue like any gettext call) and its values.
Recording renders it once per recipient language and time zone (``localize``), with dates
(``Later(local_time, ...)``) and money formatted by the shared formatters in that language
and zone. Plain strings (the service API's, which are the caller's own words) pass untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import force_locale, get_translations

from ..timeutil import in_zone

if TYPE_CHECKING:
    from .record import Notice

LANGUAGES = ("ko", "en")


@dataclass(frozen=True)
class Text:
    """A message to render later: its msgid (English) and the values it interpolates."""

    msgid: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def render(self, gettext: Callable[[str], str]) -> str:
        """Return the message in the language gettext translates to, its values filled in."""
        text = gettext(self.msgid)
        if not self.values:
            return text
        return text % {name: _render(value, gettext) for name, value in self.values.items()}

    def __str__(self) -> str:
        # Outside recording (a log line, a test), the current locale's rendering.
        return self.render(get_translations().ugettext)


def N_(msgid: str, **values: Any) -> Text:  # noqa: N802 (gettext's name for "translate later")
    """Mark msgid for the catalogue; render it later, in the recipient's language."""
    return Text(msgid, values)


@dataclass(frozen=True)
class Later:
    """A value formatted in the recipient's language and zone: a date, an amount of money."""

    format: Callable[..., str]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, format: Callable[..., str], *args: Any, **kwargs: Any) -> Later:
        """Return format(*args, **kwargs), to be called in the recipient's language and zone."""
        return cls(format, args, kwargs)


def _render(value: Any, gettext: Callable[[str], str]) -> Any:
    if isinstance(value, Text):
        return value.render(gettext)
    if isinstance(value, Later):
        return value.format(*value.args, **value.kwargs)
    return value


def language_of(language: str | None) -> str:
    """Return a stored preference language, else the default (BABEL_DEFAULT_LOCALE: Korean)."""
    if language is not None and language in LANGUAGES:
        return language
    return current_app.config.get("BABEL_DEFAULT_LOCALE", "ko")


def readers(
    user_ids: set[int], prefs: Mapping[int, Any] | None = None
) -> dict[int, tuple[str, str]]:
    """Return each user's (language, time zone name); users without preferences get defaults.

    prefs: these users' preference rows, already read (record's routing): no second read.
    """
    from ..channels.preferences import load_rows

    zone = current_app.config["APP_TIMEZONE"]
    rows = load_rows(user_ids) if prefs is None else prefs
    found: dict[int, tuple[str, str]] = dict.fromkeys(user_ids, (language_of(None), zone))
    for user_id in user_ids:
        row = rows.get(user_id)
        if row is not None:
            found[user_id] = (language_of(row.language), row.timezone or zone)
    return found


@contextmanager
def rendering_for(language: str, zone: str) -> Iterator[Callable[[str], str]]:
    """Yield gettext for language, with dates shown in zone, for the block's renderings."""
    with force_locale(language), in_zone(ZoneInfo(zone)):
        yield get_translations().ugettext


def localize(notices: list[Notice], prefs: Mapping[int, Any] | None = None) -> list[Notice]:
    """Render each notice's Text title and body in its recipient's language and zone.

    One preference read for the lot (none when prefs, the routing's rows, are given) and one
    locale switch per (language, zone); a Text shared
    by many notices (one campaign's followers) renders once per language. Notices whose text
    is plain (the service API's) come back as they are, at no cost.
    """
    lazy = [
        i
        for i, notice in enumerate(notices)
        if not (isinstance(notice.title, str) and isinstance(notice.body, str))
    ]
    if not lazy:
        return notices
    who = readers({notices[i].user_id for i in lazy}, prefs)
    groups: dict[tuple[str, str], list[int]] = {}
    for i in lazy:
        groups.setdefault(who[notices[i].user_id], []).append(i)
    done = list(notices)
    for (language, zone), indexes in groups.items():
        cache: dict[int, str] = {}
        with rendering_for(language, zone) as gettext:
            for i in indexes:
                notice = notices[i]
                done[i] = replace(
                    notice,
                    title=_once(notice.title, gettext, cache),
                    body=_once(notice.body, gettext, cache),
                )
    return done


def _once(value: Any, gettext: Callable[[str], str], cache: dict[int, str]) -> str:
    """Render value, once per object: the same Text for many recipients costs one rendering."""
    if isinstance(value, str):
        return value
    key = id(value)
    if key not in cache:
        cache[key] = str(_render(value, gettext))
    return cache[key]

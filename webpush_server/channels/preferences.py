"""Who wants what, where: per-kind channel defaults, each user's choices, and their check.

A user's row keeps only what differs from the defaults, so a new kind (or a better default)
reaches everyone who never touched it. Kinds in REQUIRED must reach the user: at least one
of their channels stays on, whatever is asked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import current_app
from flask_babel import gettext, lazy_gettext
from sqlalchemy import select

from ..auth.models import User
from ..database import one_of
from ..errors import Invalid, InvalidFields
from ..extensions import db
from ..i18n.locale import current_language
from ..notifications.kinds import KINDS
from ..util import chunked
from .models import Preference

CHANNEL_FIELDS = ("push", "email", "sms", "digest")
ROUTES = ("all", "first")
LANGUAGES = ("en", "ko")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


@dataclass(frozen=True)
class KindDefaults:
    """What a kind does for a user who never chose: its channels and routing."""

    push: bool = True
    email: bool = False
    sms: bool = False
    digest: bool = False
    route: str = "all"
    days_before: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the API shape of these defaults."""
        shape: dict[str, Any] = {name: getattr(self, name) for name in CHANNEL_FIELDS}
        shape["route"] = self.route
        if self.days_before is not None:
            shape["days_before"] = self.days_before
        return shape


# Every kind not listed gets push only. Kinds of other issues are listed ahead of them.
DEFAULTS: dict[str, KindDefaults] = {
    "book_available": KindDefaults(email=True, route="first"),
    "hold_expiring": KindDefaults(email=True),
    "hold_expired": KindDefaults(email=True),
    "hold_position": KindDefaults(),
    "hold_cancelled": KindDefaults(email=True),
    "loan_due_soon": KindDefaults(email=True, days_before=2),
    "loan_overdue": KindDefaults(email=True),
    "campaign_succeeded": KindDefaults(email=True),
    "campaign_failed": KindDefaults(email=True),
    "coupon_expiring": KindDefaults(email=True),
    "announcement": KindDefaults(),
    "password_reset": KindDefaults(push=False, email=True),
    "digest": KindDefaults(push=False, email=True),
    "test": KindDefaults(),
}
# Kinds that must reach the user: one of their channels always stays on.
REQUIRED = {
    "hold_expired": lazy_gettext("It tells you a held copy went back to the shelf."),
    "password_reset": lazy_gettext("It carries the link you asked for to set a new password."),
}
# The settings form's labels: messages name each field as the page does.
LABELS = {
    "language": lazy_gettext("Language"),
    "timezone": lazy_gettext("Time zone"),
    "quiet_hours": lazy_gettext("Quiet hours"),
    "quiet_hours.start": lazy_gettext("Quiet hours from"),
    "quiet_hours.end": lazy_gettext("Quiet hours until"),
    "digest_hour": lazy_gettext("Digest hour"),
    "days_before": lazy_gettext("Days before"),
}
# Kinds a user never sees in the matrix: they exist for us, not for them to tune.
HIDDEN = {"test", "password_reset", "digest"}


def defaults_for(kind: str) -> KindDefaults:
    """Return the defaults of a kind."""
    return DEFAULTS.get(kind, KindDefaults())


def matrix_kinds() -> list[str]:
    """Return the kinds a user can tune, in the order the page shows them."""
    return [name for name in KINDS if name not in HIDDEN]


# The most days ahead a reminder such as loan_due_soon may be asked for.
MAX_DAYS_BEFORE = 14


def kind_choice(row: Preference | None, kind: str) -> dict[str, Any]:
    """Return what this user gets for a kind: defaults, then their own choices."""
    choice = defaults_for(kind).as_dict()
    if row is not None and isinstance(row.kinds, dict):
        choice.update(row.kinds.get(kind) or {})
    return choice


def timezone_of(row: Preference | None) -> str:
    """Return the user's time zone name (APP_TIMEZONE when unset)."""
    return (row.timezone if row else None) or current_app.config["APP_TIMEZONE"]


def load_rows(user_ids: Iterable[int]) -> dict[int, Preference]:
    """Return the preference rows of these users (those who have one)."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows: list[Preference] = []
    for chunk in chunked(ids, 500):
        rows.extend(db.session.scalars(_ROWS, {"ids": chunk}))
    return {row.user_id: row for row in rows}


# Built once: the id list is bound per call instead of building a clause per user.
_ROWS = select(Preference).where(one_of(Preference.user_id, "ids"))


def preferences_json(user: User) -> dict[str, Any]:
    """Return GET /api/preferences for user."""
    row = db.session.get(Preference, user.id)
    quiet = None
    if row is not None and row.quiet_start and row.quiet_end:
        quiet = {"start": row.quiet_start, "end": row.quiet_end}
    phone = None
    if row is not None and row.phone_number:
        phone = {"number": row.phone_number, "verified": row.phone_verified_at is not None}
    return {
        # Never chosen: the language the user is reading in now.
        "language": row.language if row else current_language(),
        "timezone": timezone_of(row),
        "quiet_hours": quiet,
        "email": {
            "address": user.email,
            "verified": True,  # the login proves it; a bouncing address says so
            "bouncing": bool(row and row.email_bouncing_at),
        },
        "phone": phone,
        "digest_hour": row.digest_hour if row else 8,
        "kinds": {kind: kind_choice(row, kind) for kind in matrix_kinds()},
    }


def update_preferences(user: User, data: object) -> dict[str, Any]:
    """Merge a PUT /api/preferences body into the user's preferences; return the result.

    Everything is checked before anything is written: a bad field fails the whole request.
    """
    if not isinstance(data, Mapping):
        raise Invalid(None, gettext("The body must be a JSON object."))
    known = {"language", "timezone", "quiet_hours", "digest_hour", "kinds", "email", "phone"}
    for name in data:
        if name not in known:
            raise Invalid(str(name), gettext("%(field)s: not a preference.", field=name))
    row = db.session.get(Preference, user.id)
    fresh = row is None
    if row is None:
        row = Preference(user_id=user.id, language=current_language(), digest_hour=8, kinds={})
    values: dict[str, Any] = {}
    # Every field is checked before refusing, so one answer names all that are wrong.
    errors: dict[str, str] = {}

    def check(name: str, fn: Any) -> None:
        if name not in data:
            return
        try:
            fn(data[name])
        except Invalid as refused:
            errors[refused.field or name] = refused.message

    def language(value: object) -> None:
        if value not in LANGUAGES:
            raise Invalid(
                "language",
                gettext(
                    "%(label)s: one of %(values)s.",
                    label=LABELS["language"],
                    values=", ".join(LANGUAGES),
                ),
            )
        values["language"] = value

    def zone(value: object) -> None:
        values["timezone"] = _check_zone(value)

    def digest_hour(hour: object) -> None:
        if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
            raise Invalid(
                "digest_hour",
                gettext("%(label)s: a whole hour from 0 to 23.", label=LABELS["digest_hour"]),
            )
        values["digest_hour"] = hour

    def quiet(value: object) -> None:
        values["quiet_start"], values["quiet_end"] = _check_quiet(value)

    def kinds(value: object) -> None:
        values["kinds"] = _merge_kinds(row.kinds or {}, value)

    check("language", language)
    check("timezone", zone)
    check("digest_hour", digest_hour)
    check("quiet_hours", quiet)
    check("kinds", kinds)
    if errors:
        raise InvalidFields(errors)
    for name, value in values.items():
        setattr(row, name, value)
    if fresh:
        db.session.add(row)
    db.session.commit()
    return preferences_json(user)


def _check_zone(value: object) -> str:
    message = gettext("%(label)s: an IANA time zone such as Asia/Seoul.", label=LABELS["timezone"])
    if not isinstance(value, str) or value not in _zones():
        raise Invalid("timezone", message)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise Invalid("timezone", message) from error
    return value


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


def _check_quiet(value: object) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, Mapping) or set(value) != {"start", "end"}:
        raise Invalid(
            "quiet_hours",
            gettext(
                '%(label)s: {"start": "HH:MM", "end": "HH:MM"} or null.',
                label=LABELS["quiet_hours"],
            ),
        )
    times = []
    for part in ("start", "end"):
        text = value[part]
        if not isinstance(text, str) or not _HHMM.match(text):
            field = f"quiet_hours.{part}"
            raise Invalid(field, gettext("%(label)s: a time as HH:MM.", label=LABELS[field]))
        times.append(text)
    if times[0] == times[1]:
        raise Invalid(
            "quiet_hours.end",
            gettext(
                "%(label)s: must differ from %(start)s.",
                label=LABELS["quiet_hours.end"],
                start=LABELS["quiet_hours.start"],
            ),
        )
    return times[0], times[1]


def _merge_kinds(current: Mapping[str, Any], given: object) -> dict[str, Any]:
    """Return the stored overrides after merging given; refuse unknown or unreachable ones."""
    if not isinstance(given, Mapping):
        raise Invalid("kinds", gettext("%(field)s: an object of kind → choices.", field="kinds"))
    merged = {kind: dict(choices) for kind, choices in current.items()}
    tunable = set(matrix_kinds())
    for kind, choices in given.items():
        field = f"kinds.{kind}"
        if kind not in tunable:
            raise Invalid(field, gettext("%(field)s: not a notification kind.", field=field))
        if not isinstance(choices, Mapping):
            raise Invalid(
                field, gettext("%(field)s: an object of channel → true/false.", field=field)
            )
        stored = merged.setdefault(kind, {})
        for name, value in choices.items():
            where = f"{field}.{name}"
            if name in CHANNEL_FIELDS:
                if not isinstance(value, bool):
                    raise Invalid(where, gettext("%(field)s: true or false.", field=where))
            elif name == "route":
                if value not in ROUTES:
                    raise Invalid(
                        where,
                        gettext(
                            "%(label)s: one of %(values)s.", label=where, values=", ".join(ROUTES)
                        ),
                    )
            elif name == "days_before" and defaults_for(kind).days_before is not None:
                days = range(1, MAX_DAYS_BEFORE + 1)
                if not isinstance(value, int) or isinstance(value, bool) or value not in days:
                    raise Invalid(
                        where,
                        gettext(
                            "%(label)s: a whole number of days from 1 to %(n)d.",
                            label=LABELS["days_before"],
                            n=MAX_DAYS_BEFORE,
                        ),
                    )
            else:
                raise Invalid(where, gettext("%(field)s: not a choice of this kind.", field=where))
            stored[name] = value
        # Keep only what differs from the defaults: later default changes still reach them.
        base = defaults_for(kind).as_dict()
        merged[kind] = {k: v for k, v in stored.items() if base.get(k) != v}
        if kind in REQUIRED:
            effective = base | merged[kind]
            if not any(effective[c] for c in ("push", "email", "sms")):
                raise Invalid(
                    field,
                    gettext(
                        "%(field)s: this kind must reach you on one channel. %(why)s",
                        field=field,
                        why=REQUIRED[kind],
                    ),
                )
        if not merged[kind]:
            del merged[kind]
    return merged

"""Channel services the views call: unsubscribe by token, labels and zones for the page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..auth.models import User
from ..errors import Conflict
from ..extensions import db
from ..notifications.kinds import KINDS
from . import preferences
from .models import Preference
from .tokens import read_unsubscribe_token

# The zones the page offers first; any IANA zone is accepted through the API.
COMMON_ZONES = (
    "Asia/Seoul",
    "Asia/Tokyo",
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
)


def kind_labels() -> dict[str, str]:
    """Return a readable name per kind for the preferences page."""
    return {name: name.replace("_", " ").capitalize() for name in KINDS}


def common_zones() -> tuple[str, ...]:
    """Return the time zones the page lists."""
    return COMMON_ZONES


def read_unsubscribe(token: str) -> tuple[User, str] | None:
    """Return the user and kind of a genuine unsubscribe token whose user still exists."""
    found = read_unsubscribe_token(token)
    if found is None:
        return None
    user = db.session.get(User, found[0])
    if user is None or found[1] not in KINDS:
        return None
    return user, found[1]


def unsubscribe(user: User, kind: str) -> None:
    """Turn this kind's e-mail off for user (a kind that must reach them keeps a channel)."""
    row = db.session.get(Preference, user.id)
    if kind == "digest":
        # The digest's own link ends the digest: its kinds go back to one e-mail each.
        digested = [
            k for k in preferences.matrix_kinds() if preferences.kind_choice(row, k)["digest"]
        ]
        if digested:
            preferences.update_preferences(
                user, {"kinds": {k: {"digest": False} for k in digested}}
            )
        return
    choice = preferences.kind_choice(row, kind)
    if not choice["email"]:
        return  # already off: the second click of a one-click link changes nothing
    if kind in preferences.REQUIRED and not (choice["push"] or choice["sms"]):
        raise Conflict(
            f"kinds.{kind}.email",
            f"E-mail is the only channel left for this kind. {preferences.REQUIRED[kind]}",
        )
    preferences.update_preferences(user, {"kinds": {kind: {"email": False}}})


def form_to_update(form: Mapping[str, str]) -> dict[str, Any]:
    """Turn the settings form into a PUT /api/preferences body (every cell of the matrix)."""
    kinds: dict[str, dict[str, Any]] = {}
    for kind in preferences.matrix_kinds():
        cells: dict[str, Any] = {
            channel: form.get(f"{kind}.{channel}") == "on"
            for channel in ("push", "email", "digest")
        }
        if f"{kind}.sms" in form:  # disabled (no verified phone): not sent, left alone
            cells["sms"] = form.get(f"{kind}.sms") == "on"
        if form.get(f"{kind}.route"):
            cells["route"] = form[f"{kind}.route"]
        if form.get(f"{kind}.days_before"):
            raw = form[f"{kind}.days_before"]
            cells["days_before"] = int(raw) if raw.isascii() and raw.isdigit() else raw
        kinds[kind] = cells
    update: dict[str, Any] = {"kinds": kinds}
    if form.get("language"):
        update["language"] = form["language"]
    if form.get("timezone"):
        update["timezone"] = form["timezone"]
    start, end = form.get("quiet_start", ""), form.get("quiet_end", "")
    update["quiet_hours"] = {"start": start, "end": end} if start or end else None
    raw_hour = form.get("digest_hour", "")
    if raw_hour:
        update["digest_hour"] = (
            int(raw_hour) if raw_hour.isascii() and raw_hour.isdigit() else raw_hour
        )
    return update

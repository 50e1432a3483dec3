"""Notification kinds and their Web Push options (docs/api.md, "Notification kinds")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


def _(label: str) -> str:
    """Mark a label for the catalogue (pybabel's `_`); where it is shown, gettext(label)."""
    return label


@dataclass(frozen=True)
class Kind:
    """How one kind of notification travels.

    ttl is the default lifetime; kinds that live "until the deadline" get expires_at from the
    notice instead. label is the short name the pages show beside it (English, the msgid:
    pages and e-mails show gettext(label)). push_when_visible sends
    Web Push even while the user has a visible tab. site is the site it belongs to: an API key
    bound to that site (or to all) may send it.
    """

    name: str
    label: str
    urgency: str
    ttl: timedelta
    push_when_visible: bool = False
    # The site whose service API keys may send it (None: no site's own kind).
    site: str | None = None


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("book_available", _("Library"), "high", timedelta(days=3), site="library"),
        Kind("hold_expiring", _("Library"), "normal", timedelta(days=1), site="library"),
        Kind("hold_expired", _("Library"), "normal", timedelta(days=3), site="library"),
        # Library v2: loans and the hold queue (one tag and Topic per hold or loan).
        Kind("loan_due_soon", _("Library"), "normal", timedelta(days=2), site="library"),
        Kind("loan_overdue", _("Library"), "normal", timedelta(days=3), site="library"),
        Kind("loan_renewed", _("Library"), "low", timedelta(days=1), site="library"),
        Kind("hold_position", _("Library"), "low", timedelta(days=3), site="library"),
        Kind("hold_cancelled", _("Library"), "normal", timedelta(days=3), site="library"),
        Kind("hold_resumed", _("Library"), "low", timedelta(days=1), site="library"),
        Kind("campaign_succeeded", _("Funding"), "normal", timedelta(days=7), site="funding"),
        Kind("campaign_failed", _("Funding"), "normal", timedelta(days=7), site="funding"),
        Kind("campaign_deadline_soon", _("Funding"), "low", timedelta(days=1), site="funding"),
        # To the campaign's creator (an admin) when it closes, with the totals.
        Kind("campaign_closed", _("Funding"), "normal", timedelta(days=7), site="funding"),
        Kind("coupon_expiring", _("Coupon"), "normal", timedelta(days=1), site="funding"),
        # Sent by other services through the service API (any key); users can turn it off.
        Kind("announcement", _("Announcement"), "normal", timedelta(days=1)),
        # The e-mailed link of a password reset (auth/reset.py): e-mail only, never turned off.
        Kind("password_reset", _("Account"), "high", timedelta(minutes=30)),
        # One e-mail a day listing the unread notices of the kinds a user marked `digest`.
        Kind("digest", _("Digest"), "low", timedelta(days=1)),
        # `test` exists to test push: always sent to every device, even with a tab visible.
        Kind("test", _("Test"), "high", timedelta(hours=1), push_when_visible=True),
    )
}

# Mozilla caps TTL at 30 days; other services clamp silently.
MAX_TTL = timedelta(days=30)

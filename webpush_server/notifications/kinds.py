"""Notification kinds and their Web Push options (docs/api.md, "Notification kinds")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Kind:
    """How one kind of notification travels.

    ttl is the default lifetime; kinds that live "until the deadline" get expires_at from the
    notice instead. label is the short name the pages show beside it. push_when_visible sends
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
        Kind("book_available", "Library", "high", timedelta(days=3), site="library"),
        Kind("hold_expiring", "Library", "normal", timedelta(days=1), site="library"),
        Kind("hold_expired", "Library", "normal", timedelta(days=3), site="library"),
        # Library v2: loans and the hold queue (one tag and Topic per hold or loan).
        Kind("loan_due_soon", "Library", "normal", timedelta(days=2), site="library"),
        Kind("loan_overdue", "Library", "normal", timedelta(days=3), site="library"),
        Kind("loan_renewed", "Library", "low", timedelta(days=1), site="library"),
        Kind("hold_position", "Library", "low", timedelta(days=3), site="library"),
        Kind("hold_cancelled", "Library", "normal", timedelta(days=3), site="library"),
        Kind("hold_resumed", "Library", "low", timedelta(days=1), site="library"),
        Kind("campaign_succeeded", "Funding", "normal", timedelta(days=7), site="funding"),
        Kind("campaign_failed", "Funding", "normal", timedelta(days=7), site="funding"),
        Kind("campaign_deadline_soon", "Funding", "low", timedelta(days=1), site="funding"),
        # To the campaign's creator (an admin) when it closes, with the totals.
        Kind("campaign_closed", "Funding", "normal", timedelta(days=7), site="funding"),
        Kind("coupon_expiring", "Coupon", "normal", timedelta(days=1), site="funding"),
        # Sent by other services through the service API (any key); users can turn it off.
        Kind("announcement", "Announcement", "normal", timedelta(days=1)),
        # The e-mailed link of a password reset (auth/reset.py): e-mail only, never turned off.
        Kind("password_reset", "Account", "high", timedelta(minutes=30)),
        # One e-mail a day listing the unread notices of the kinds a user marked `digest`.
        Kind("digest", "Digest", "low", timedelta(days=1)),
        # `test` exists to test push: always sent to every device, even with a tab visible.
        Kind("test", "Test", "high", timedelta(hours=1), push_when_visible=True),
    )
}

# Mozilla caps TTL at 30 days; other services clamp silently.
MAX_TTL = timedelta(days=30)

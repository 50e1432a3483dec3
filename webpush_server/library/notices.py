"""Who is told what in the library."""

from __future__ import annotations

from ..extensions import db
from ..notifications.record import Notice, Recipients
from ..timeutil import local_time
from .events import HoldBecameReady, HoldExpired, HoldExpiringSoon
from .models import Hold


def hold_url(hold_id: int) -> str:
    """Return the page of one hold: where a notification about it opens."""
    return f"/library/holds/{hold_id}"


def book_available(event: HoldBecameReady) -> list[Notice]:
    """The patron whose hold became ready: pick it up before the deadline."""
    hold = db.session.get_one(Hold, event.hold_id)
    return [
        Notice(
            user_id=hold.user_id,
            kind="book_available",
            title=f"Your book is ready: {hold.book.title}",
            body=f"Copy {hold.copy_id} is waiting for you at the desk until "
            f"{local_time(hold.pickup_deadline, 'notice')}.",
            url=hold_url(hold.id),
            dedupe_key=f"hold-ready:{hold.id}",
            topic=f"hold-{hold.id}",
            expires_at=hold.pickup_deadline,
        )
    ]


def hold_expiring(event: HoldExpiringSoon) -> list[Notice]:
    """The patron whose ready hold lapses within a day."""
    hold = db.session.get(Hold, event.hold_id)
    if hold is None or hold.status != "ready":
        return []
    return [
        Notice(
            user_id=hold.user_id,
            kind="hold_expiring",
            title=f"Pick up {hold.book.title} by {local_time(hold.pickup_deadline, 'notice')}",
            body="Your copy is set aside for one more day; after that it goes to the next reader.",
            url=hold_url(hold.id),
            dedupe_key=f"hold-expiring:{hold.id}",
            topic=f"hold-{hold.id}",
        )
    ]


def hold_expired(event: HoldExpired) -> list[Notice]:
    """The patron who did not collect a ready hold in time."""
    hold = db.session.get_one(Hold, event.hold_id)
    return [
        Notice(
            user_id=hold.user_id,
            kind="hold_expired",
            title=f"Your hold on {hold.book.title} has lapsed",
            body="The pickup deadline passed, so the copy went to the next reader. "
            "You can reserve the book again.",
            url=hold_url(hold.id),
            dedupe_key=f"hold-expired:{hold.id}",
            topic=f"hold-{hold.id}",
        )
    ]


# Who is told what in the library: registered by library.init_app.
RECIPIENTS: Recipients = {
    HoldBecameReady: book_available,
    HoldExpiringSoon: hold_expiring,
    HoldExpired: hold_expired,
}

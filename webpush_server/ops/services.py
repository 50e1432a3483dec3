"""What an admin can do from the dashboard: retry or discard a dead delivery, send a test."""

from __future__ import annotations

from sqlalchemy import update

from ..admin import audit
from ..auth.services import find_user
from ..database import get_or_refuse, rows_changed
from ..errors import Conflict, NotFound
from ..extensions import db
from ..jobs.outcomes import MAX_ERROR
from ..notifications.models import Delivery
from ..notifications.outbox import remember_for_enqueue
from ..notifications.services import send_test

_D = Delivery.__table__.c


def _only_dead(delivery_id: int) -> None:
    """Raise NotFound for an unknown delivery, Conflict for one that is not dead (any more)."""
    row = get_or_refuse(Delivery, delivery_id, field="delivery_id")
    raise Conflict("delivery_id", f"Delivery {row.id} is {row.status}, not dead.")


def retry_dead(delivery_id: int) -> None:
    """Give a dead delivery a fresh set of attempts and enqueue it after the commit."""
    changed = rows_changed(
        update(Delivery.__table__)
        .where(_D.id == delivery_id, _D.status == "dead")
        .values(status="pending", attempts=0, reclaims=0, next_attempt_at=None, claim_token=None)
    )
    if not changed:
        db.session.rollback()
        _only_dead(delivery_id)
    audit.record("delivery.retry", f"delivery {delivery_id}")
    remember_for_enqueue([delivery_id])
    db.session.commit()


def discard_dead(delivery_id: int, admin_email: str) -> None:
    """Give up on a dead delivery: it ends failed, its last error saying who discarded it."""
    row = db.session.get(Delivery, delivery_id)
    note = f"discarded by {admin_email}"
    if row is not None and row.last_error:
        note += f"; {row.last_error}"
    changed = rows_changed(
        update(Delivery.__table__)
        .where(_D.id == delivery_id, _D.status == "dead")
        .values(status="failed", last_error=note[:MAX_ERROR])
    )
    if not changed:
        db.session.rollback()
        _only_dead(delivery_id)
    audit.record("delivery.discard", f"delivery {delivery_id}")
    db.session.commit()


def send_test_to(email: str) -> int:
    """Send the `test` notification to every device of the user with this e-mail."""
    user = find_user(email.strip())
    if user is None:
        raise NotFound("email", f"No account has the e-mail {email.strip()!r}.")
    return send_test(user.id)
